-- The client the API accepted each order from (its token's client_id, azp or sub): the order id is a deduplication
-- key across all clients, and a later message under the same id from another client must be told apart from a
-- retry. NULL for rows stored before this migration, and for messages published before the API sent it.
ALTER TABLE dbo.orders ADD client_id nvarchar(256) NULL;
GO

-- The batch insert's rows with the client. A new type rather than a changed dbo.order_row: a consumer of the previous
-- version, still running during a rolling update, keeps using that one. Text as wide as dbo.order_row's, for the
-- same reason (see 0001).
CREATE TYPE dbo.order_row_with_client AS TABLE (
    order_id          uniqueidentifier  NOT NULL,
    customer_name     nvarchar(4000)    NOT NULL,
    customer_email    varbinary(max)    NOT NULL,
    customer_document varbinary(max)    NOT NULL,
    currency          nvarchar(4000)    NOT NULL,
    total             decimal(19,4)     NOT NULL,
    created_at        datetimeoffset(7) NOT NULL,
    correlation_id    nvarchar(4000)    NULL,
    client_id         nvarchar(4000)    NULL
);
GO
