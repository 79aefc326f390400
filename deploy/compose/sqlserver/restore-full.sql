-- Restores a full backup as $(RESTORE_AS), not yet recovered (log backups follow: restore-log.sql), run by
-- ../restore.sh. Under another name (the drill) its files are moved beside the database's own.
RESTORE DATABASE [$(RESTORE_AS)] FROM DISK = N'$(BACKUP_FILE)'
    WITH NORECOVERY, REPLACE, CHECKSUM,
    MOVE N'$(ENVIO_DB_NAME)' TO N'/var/opt/mssql/data/$(RESTORE_AS).mdf',
    MOVE N'$(ENVIO_DB_NAME)_log' TO N'/var/opt/mssql/data/$(RESTORE_AS)_log.ldf';
