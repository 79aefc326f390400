-- Replays one log backup onto $(RESTORE_AS) (../restore.sh, in the order they were taken).
RESTORE LOG [$(RESTORE_AS)] FROM DISK = N'$(BACKUP_FILE)' WITH NORECOVERY, CHECKSUM;
