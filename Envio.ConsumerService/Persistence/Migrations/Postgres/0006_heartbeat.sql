-- The outage probe's proof that the database takes writes (Messaging/StoreOutage.cs): it writes this one row and
-- commits. A SELECT 1 answers on a database that cannot write (a standby after a failover, a full disk), and a
-- rolled-back write proves neither (nothing needs the log flushed). Not a data object: no type maps it.
CREATE TABLE envio_heartbeat (
    id       int          NOT NULL PRIMARY KEY CHECK (id = 1),
    beat_at  timestamptz  NOT NULL,
    beat_by  varchar(128) NOT NULL
);
