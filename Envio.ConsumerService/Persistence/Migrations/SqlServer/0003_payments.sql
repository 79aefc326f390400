-- Payments (Envio.Contracts/Payments/Payment.cs), keyed by the payment id (which is also the message id: inserts are
-- idempotent on it), clustered on an identity column as orders are (a UUIDv7 is not sequential to SQL Server).
-- The payer is flattened (payer_name, payer_document); the document is sealed (AES-256-GCM with the key ring), so it
-- holds bytes. The method is stored by its JSON name.
CREATE TABLE dbo.payments (
    row_id         bigint IDENTITY(1,1) NOT NULL,
    payment_id     uniqueidentifier     NOT NULL,
    reference      nvarchar(64)         NOT NULL,
    method         nvarchar(12)         NOT NULL,
    amount         decimal(19,4)        NOT NULL CONSTRAINT ck_payments_amount CHECK (amount > 0),
    currency       char(3)              NOT NULL,
    payer_name     nvarchar(200)        NOT NULL,
    payer_document varbinary(max)       NOT NULL,
    due_date       date                 NULL,
    note           nvarchar(500)        NULL,
    created_at     datetimeoffset(7)    NOT NULL,
    correlation_id nvarchar(128)        NULL,
    client_id      nvarchar(256)        NULL,
    received_at    datetimeoffset(7)    NOT NULL CONSTRAINT df_payments_received_at DEFAULT SYSDATETIMEOFFSET(),
    received_by    nvarchar(128)        NOT NULL,
    CONSTRAINT pk_payments PRIMARY KEY NONCLUSTERED (payment_id)
);
GO

CREATE UNIQUE CLUSTERED INDEX cx_payments_row_id ON dbo.payments (row_id);
GO

CREATE INDEX ix_payments_received_at ON dbo.payments (received_at);
GO

-- A batch's rows, as the consumer sends them when some payment of the batch is stored already (a table-valued
-- parameter). Text is declared wider than its column on purpose, so that an over-long value reaches the INSERT and is
-- refused instead of being cut short by SqlClient (see 0001).
CREATE TYPE dbo.payment_row AS TABLE (
    payment_id     uniqueidentifier  NOT NULL,
    reference      nvarchar(4000)    NOT NULL,
    method         nvarchar(4000)    NOT NULL,
    amount         decimal(19,4)     NOT NULL,
    currency       nvarchar(4000)    NOT NULL,
    payer_name     nvarchar(4000)    NOT NULL,
    payer_document varbinary(max)    NOT NULL,
    due_date       date              NULL,
    note           nvarchar(4000)    NULL,
    created_at     datetimeoffset(7) NOT NULL,
    correlation_id nvarchar(4000)    NULL,
    client_id      nvarchar(4000)    NULL
);
GO
