-- Orders and their items, keyed by the order id (which is also the message id: inserts are idempotent on it).
CREATE TABLE orders (
    order_id          uuid          NOT NULL PRIMARY KEY,
    customer_name     varchar(200)  NOT NULL,
    customer_email    varchar(254)  NOT NULL,
    customer_document varchar(50)   NOT NULL,
    currency          char(3)       NOT NULL,
    total             numeric(19,4) NOT NULL CHECK (total >= 0),
    created_at        timestamptz   NOT NULL,
    correlation_id    varchar(128)  NULL,
    received_at       timestamptz   NOT NULL DEFAULT now(),
    received_by       varchar(128)  NOT NULL
);

CREATE TABLE order_items (
    order_id   uuid          NOT NULL REFERENCES orders (order_id),
    line_no    integer       NOT NULL,
    sku        varchar(64)   NOT NULL,
    quantity   integer       NOT NULL CHECK (quantity > 0),
    unit_price numeric(19,4) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, line_no)
);

CREATE INDEX ix_orders_received_at ON orders (received_at);
