-- The outage probe's proof that the database takes writes (Messaging/StoreOutage.cs): it writes this one row and
-- commits. A SELECT 1 answers on a database that cannot write (read-only after a failover, a full log), and a
-- rolled-back write proves neither (nothing needs the log hardened). Not a data object: no type maps it.
CREATE TABLE dbo.envio_heartbeat (
    id      int               NOT NULL CONSTRAINT pk_envio_heartbeat PRIMARY KEY CONSTRAINT ck_envio_heartbeat_id CHECK (id = 1),
    beat_at datetimeoffset(7) NOT NULL,
    beat_by nvarchar(128)     NOT NULL
);
GO
