-- The collector's login (ENVIO_MONITOR_LOGIN, envio_monitor), which reads SQL Server's state and nothing stored: VIEW
-- SERVER STATE on the server and VIEW DATABASE STATE in ENVIO_DB_NAME (sys.dm_db_log_space_usage, the log space the
-- alert SqlServerLogSpaceHigh watches), no role, no right on a table. Run by the sqlserver-monitor-login step
-- (docker-compose.yml) with the administrator's credentials at every `up`, after bootstrap.sql made the database;
-- running it again sets the password again (rotation). sqlcmd fills ENVIO_DB_NAME, ENVIO_MONITOR_LOGIN and
-- ENVIO_MONITOR_PASSWORD (letters and digits) from the environment. A file of its own, not part of bootstrap.sql: that
-- one is the AppHost's statement, which runs where no collector does.
DECLARE @database sysname = N'$(ENVIO_DB_NAME)', @login sysname = N'$(ENVIO_MONITOR_LOGIN)', @password nvarchar(128) = N'$(ENVIO_MONITOR_PASSWORD)';
DECLARE @setLogin nvarchar(800) =
    CASE WHEN SUSER_ID(@login) IS NULL
         THEN N'CREATE LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, N'''')
              + N', DEFAULT_DATABASE = ' + QUOTENAME(@database)
         ELSE N'ALTER LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, N'''')
    END;
EXEC sys.sp_executesql @setLogin;
DECLARE @grantServer nvarchar(400) = N'GRANT VIEW SERVER STATE TO ' + QUOTENAME(@login);
EXEC sys.sp_executesql @grantServer;
-- In the database: a user for the login (it connects to it) with VIEW DATABASE STATE only.
DECLARE @grantDatabase nvarchar(1200) = N'USE ' + QUOTENAME(@database) + N'; '
    + N'IF USER_ID(' + QUOTENAME(@login, N'''') + N') IS NULL CREATE USER ' + QUOTENAME(@login) + N' FOR LOGIN ' + QUOTENAME(@login) + N'; '
    + N'GRANT VIEW DATABASE STATE TO ' + QUOTENAME(@login) + N';';
EXEC sys.sp_executesql @grantDatabase;
