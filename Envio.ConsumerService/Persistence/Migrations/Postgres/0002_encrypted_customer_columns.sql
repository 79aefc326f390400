-- The customer's email and document are personal data: the consumer stores them encrypted (AES-256-GCM with the
-- key ring; each value carries its key id, nonce and tag), so the columns hold bytes. Rows written before this
-- migration keep their clear text, as UTF-8 bytes (a sealed value starts with byte 0x01, clear text never does):
-- re-encrypt or purge them (README, "Encryption at rest").
ALTER TABLE orders
    ALTER COLUMN customer_email TYPE bytea USING convert_to(customer_email, 'UTF8'),
    ALTER COLUMN customer_document TYPE bytea USING convert_to(customer_document, 'UTF8');
