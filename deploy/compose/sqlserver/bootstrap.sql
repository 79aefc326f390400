-- The consumer's two logins, neither with a server role: ENVIO_DB_LOGIN owns its database and runs the migrations;
-- ENVIO_DB_WRITER_LOGIN is what the consumer writes with (the migrations make it a user of the database and grant it
-- select and insert, nothing else). Run by the sqlserver-bootstrap step (docker-compose.yml) with the administrator's
-- credentials at every `up`; running it again sets the passwords again (rotation). sqlcmd fills the scripting variables
-- below from the environment: ENVIO_DB_NAME, ENVIO_DB_LOGIN, ENVIO_DB_PASSWORD, ENVIO_DB_WRITER_LOGIN,
-- ENVIO_DB_WRITER_PASSWORD (letters and digits). Below the declarations: Envio.AppHost/Hosting/SqlServerLogins.cs,
-- CreateLoginOwningDatabase (a test keeps them equal).
DECLARE @database sysname = N'$(ENVIO_DB_NAME)', @login sysname = N'$(ENVIO_DB_LOGIN)', @password nvarchar(128) = N'$(ENVIO_DB_PASSWORD)', @writerLogin sysname = N'$(ENVIO_DB_WRITER_LOGIN)', @writerPassword nvarchar(128) = N'$(ENVIO_DB_WRITER_PASSWORD)';
IF DB_ID(@database) IS NULL
BEGIN
    DECLARE @createDatabase nvarchar(400) = N'CREATE DATABASE ' + QUOTENAME(@database);
    EXEC sys.sp_executesql @createDatabase;
END;
DECLARE @setLogin nvarchar(800) =
    CASE WHEN SUSER_ID(@login) IS NULL
         THEN N'CREATE LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, N'''')
              + N', DEFAULT_DATABASE = ' + QUOTENAME(@database)
         ELSE N'ALTER LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, N'''')
    END;
EXEC sys.sp_executesql @setLogin;
DECLARE @setOwner nvarchar(400) = N'ALTER AUTHORIZATION ON DATABASE::' + QUOTENAME(@database) + N' TO ' + QUOTENAME(@login);
EXEC sys.sp_executesql @setOwner;
DECLARE @setWriter nvarchar(800) =
    CASE WHEN SUSER_ID(@writerLogin) IS NULL
         THEN N'CREATE LOGIN ' + QUOTENAME(@writerLogin) + N' WITH PASSWORD = ' + QUOTENAME(@writerPassword, N'''')
              + N', DEFAULT_DATABASE = ' + QUOTENAME(@database)
         ELSE N'ALTER LOGIN ' + QUOTENAME(@writerLogin) + N' WITH PASSWORD = ' + QUOTENAME(@writerPassword, N'''')
    END;
EXEC sys.sp_executesql @setWriter;
