-- The client the API accepted each order from (its token's client_id, azp or sub): the order id is a deduplication
-- key across all clients, and a later message under the same id from another client must be told apart from a
-- retry. NULL for rows stored before this migration, and for messages published before the API sent it.
ALTER TABLE orders ADD COLUMN client_id varchar(256) NULL;
