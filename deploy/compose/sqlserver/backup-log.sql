-- A log backup (../backup.sh log, every 15 minutes): what a restore replays after the full backup, and what frees the
-- log for reuse. Then the log's use, which fails the job (sqlcmd -b) above $(LOG_ALERT_PERCENT) %: a log that fills
-- stops every write (the consumers pause) until it is backed up or grown.
BACKUP LOG [$(ENVIO_DB_NAME)] TO DISK = N'$(BACKUP_FILE)' WITH $(BACKUP_COMPRESSION), CHECKSUM, INIT;
USE [$(ENVIO_DB_NAME)];
DECLARE @used decimal(5, 1) = (SELECT CAST(used_log_space_in_percent AS decimal(5, 1)) FROM sys.dm_db_log_space_usage);
DECLARE @waits nvarchar(60) = (SELECT log_reuse_wait_desc FROM sys.databases WHERE name = DB_NAME());
PRINT CONCAT(N'log space used: ', @used, N' % (log_reuse_wait: ', @waits, N')');
IF @used > $(LOG_ALERT_PERCENT)
BEGIN
    DECLARE @message nvarchar(200) = CONCAT(N'The transaction log is ', @used, N' % full (log_reuse_wait: ', @waits, N').');
    RAISERROR (@message, 16, 1);
END;
