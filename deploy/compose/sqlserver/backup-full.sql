-- A full backup of Envio's database, run by ../backup.sh full with sqlcmd inside the sqlserver container; sqlcmd
-- fills $(ENVIO_DB_NAME), $(BACKUP_FILE) and $(BACKUP_COMPRESSION) from the environment. The recovery model is set on
-- purpose: FULL, so that the log backups every 15 minutes (backup-log.sql) restore to within 15 minutes and are also
-- what empties the log: it cannot grow without limit while they run (backup.sh log checks its use).
ALTER DATABASE [$(ENVIO_DB_NAME)] SET RECOVERY FULL;
BACKUP DATABASE [$(ENVIO_DB_NAME)] TO DISK = N'$(BACKUP_FILE)'
    WITH $(BACKUP_COMPRESSION), CHECKSUM, INIT, NAME = N'$(ENVIO_DB_NAME) full';
RESTORE VERIFYONLY FROM DISK = N'$(BACKUP_FILE)' WITH CHECKSUM;
