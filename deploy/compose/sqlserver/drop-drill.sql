-- The restore drill's copy is dropped once checked (../restore.sh drill): production is never touched by it.
DROP DATABASE [$(RESTORE_AS)];
