-- Orders and their items, keyed by the order id (which is also the message id: inserts are idempotent on it).
-- SQL Server orders uniqueidentifier values by their last bytes, so a time-ordered UUIDv7 is not sequential
-- there: the table is clustered on an identity column instead, with the order id as a nonclustered primary key.
-- The customer's email and document are personal data: the consumer stores them encrypted (AES-256-GCM with the
-- key ring; each value carries its key id, nonce and tag), so those columns hold bytes.
-- Written in the T-SQL that both SQL Server and Babelfish for PostgreSQL accept (see README, "SQL Server"): every
-- column is created with its final type and nullability, since Babelfish cannot change nullability afterwards.
CREATE TABLE dbo.orders (
    row_id            bigint IDENTITY(1,1) NOT NULL,
    order_id          uniqueidentifier     NOT NULL,
    customer_name     nvarchar(200)        NOT NULL,
    customer_email    varbinary(max)       NOT NULL,
    customer_document varbinary(max)       NOT NULL,
    currency          char(3)              NOT NULL,
    total             decimal(19,4)        NOT NULL CONSTRAINT ck_orders_total CHECK (total >= 0),
    created_at        datetimeoffset(7)    NOT NULL,
    correlation_id    nvarchar(128)        NULL,
    received_at       datetimeoffset(7)    NOT NULL CONSTRAINT df_orders_received_at DEFAULT SYSDATETIMEOFFSET(),
    received_by       nvarchar(128)        NOT NULL,
    CONSTRAINT pk_orders PRIMARY KEY NONCLUSTERED (order_id)
);
GO

CREATE UNIQUE CLUSTERED INDEX cx_orders_row_id ON dbo.orders (row_id);
GO

CREATE TABLE dbo.order_items (
    order_id   uniqueidentifier NOT NULL CONSTRAINT fk_order_items_orders REFERENCES dbo.orders (order_id),
    line_no    int              NOT NULL,
    sku        nvarchar(64)     NOT NULL,
    quantity   int              NOT NULL CONSTRAINT ck_order_items_quantity CHECK (quantity > 0),
    unit_price decimal(19,4)    NOT NULL CONSTRAINT ck_order_items_unit_price CHECK (unit_price >= 0),
    CONSTRAINT pk_order_items PRIMARY KEY (order_id, line_no)
);
GO

CREATE INDEX ix_orders_received_at ON dbo.orders (received_at);
GO

-- The rows a batch insert sends as table-valued parameters. Their text columns are wider than the table columns
-- they fill, on purpose: SqlClient cuts a table-valued parameter's text to its declared width without a word, so a
-- width equal to the column's would store an over-long value shortened. With a wider declaration, the INSERT into
-- the table refuses it (string or binary data would be truncated), as it does for any other parameter.
CREATE TYPE dbo.order_row AS TABLE (
    order_id          uniqueidentifier  NOT NULL,
    customer_name     nvarchar(4000)    NOT NULL,
    customer_email    varbinary(max)    NOT NULL,
    customer_document varbinary(max)    NOT NULL,
    currency          nvarchar(4000)    NOT NULL,
    total             decimal(19,4)     NOT NULL,
    created_at        datetimeoffset(7) NOT NULL,
    correlation_id    nvarchar(4000)    NULL
);
GO

CREATE TYPE dbo.order_item_row AS TABLE (
    order_id   uniqueidentifier NOT NULL,
    line_no    int              NOT NULL,
    sku        nvarchar(4000)   NOT NULL,
    quantity   int              NOT NULL,
    unit_price decimal(19,4)    NOT NULL
);
GO
