-- Brings $(RESTORE_AS) online after the last log backup and checks it page by page (../restore.sh).
RESTORE DATABASE [$(RESTORE_AS)] WITH RECOVERY;
DBCC CHECKDB ([$(RESTORE_AS)]) WITH NO_INFOMSGS;
