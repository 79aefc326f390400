-- Payments (Envio.Contracts/Payments/Payment.cs), keyed by the payment id (which is also the message id: inserts are
-- idempotent on it). One column per property, in the record's order (the payer flattened: payer_name, payer_document),
-- then what the message said and who stored it; payer_document is sealed (AES-256-GCM with the key ring), so it holds
-- bytes. The method is stored by its JSON name.
CREATE TABLE payments (
    payment_id     uuid          NOT NULL PRIMARY KEY,
    reference      varchar(64)   NOT NULL,
    method         varchar(12)   NOT NULL,
    amount         numeric(19,4) NOT NULL CHECK (amount > 0),
    currency       char(3)       NOT NULL,
    payer_name     varchar(200)  NOT NULL,
    payer_document bytea         NOT NULL,
    due_date       date          NULL,
    note           varchar(500)  NULL,
    created_at     timestamptz   NOT NULL,
    correlation_id varchar(128)  NULL,
    client_id      varchar(256)  NULL,
    received_at    timestamptz   NOT NULL DEFAULT now(),
    received_by    varchar(128)  NOT NULL
);

CREATE INDEX ix_payments_received_at ON payments (received_at);
