-- PostgreSQL checks a foreign key row by row (a trigger and an index probe with a row lock per item): measured here,
-- that check costs more than copying the item rows themselves and halves the orders the database takes per second
-- (PostgreSQL CPU per order 28 µs with it, 14 without; README, "Performance"). The consumer is the only writer of
-- these tables and writes an order's items only in the transaction that inserts the order (or, on the idempotent
-- path, only for the orders that transaction inserted), so the key guarded nothing Envio can do; the tests check
-- that no item is ever stored without its order. Deleting orders by hand must delete their items too.
-- SQL Server keeps its key: it checks a batch insert set-based, in one join.
ALTER TABLE order_items DROP CONSTRAINT order_items_order_id_fkey;
