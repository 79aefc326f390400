-- The customer's email and document are personal data: the consumer stores them encrypted (AES-256-GCM with the
-- key ring; each value carries its key id, nonce and tag), so the columns hold bytes. Rows written before this
-- migration keep their clear text, as UTF-16 bytes (a sealed value starts with byte 0x01, clear text never does):
-- re-encrypt or purge them (README, "Encryption at rest"). nvarchar does not convert to varbinary in place: new
-- columns are filled, the old ones dropped, and the new ones take their names.
ALTER TABLE dbo.orders ADD customer_email_sealed varbinary(max) NULL, customer_document_sealed varbinary(max) NULL;
GO

UPDATE dbo.orders
SET customer_email_sealed = CONVERT(varbinary(max), customer_email),
    customer_document_sealed = CONVERT(varbinary(max), customer_document);
GO

ALTER TABLE dbo.orders DROP COLUMN customer_email, customer_document;
GO

EXEC sys.sp_rename N'dbo.orders.customer_email_sealed', N'customer_email', N'COLUMN';
EXEC sys.sp_rename N'dbo.orders.customer_document_sealed', N'customer_document', N'COLUMN';
GO

ALTER TABLE dbo.orders ALTER COLUMN customer_email varbinary(max) NOT NULL;
ALTER TABLE dbo.orders ALTER COLUMN customer_document varbinary(max) NOT NULL;
GO

-- A table type cannot be altered: the batch's row type is created again with the encrypted columns.
DROP TYPE dbo.order_row;
GO

CREATE TYPE dbo.order_row AS TABLE (
    order_id          uniqueidentifier  NOT NULL,
    customer_name     nvarchar(200)     NOT NULL,
    customer_email    varbinary(max)    NOT NULL,
    customer_document varbinary(max)    NOT NULL,
    currency          char(3)           NOT NULL,
    total             decimal(19,4)     NOT NULL,
    created_at        datetimeoffset(7) NOT NULL,
    correlation_id    nvarchar(128)     NULL
);
GO
