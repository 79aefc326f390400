using Microsoft.Data.SqlClient;

namespace Envio.AppHost.Hosting;

/// <summary>
/// The consumer's two SQL Server logins, neither with a server role: <see cref="ConsumerLogin"/> owns its database and
/// runs the migrations; <see cref="WriterLogin"/> is what the consumer writes with, made a user of the database and
/// granted select and insert by those migrations (the consumer's SqlServerWriterRights). Run once with the
/// administrator's credentials, by the AppHost for its development container and by the deployment's bootstrap step
/// (deploy/compose/sqlserver/bootstrap.sql, the same batch after sqlcmd's variables). Running it again sets the
/// passwords again: that is how they rotate.
/// </summary>
public static class SqlServerLogins
{
    /// <summary>The login that owns the consumer's database (its migrations), in the AppHost's model and in deploy/compose.</summary>
    public const string ConsumerLogin = "envio";

    /// <summary>The login the consumer writes with: select and insert, granted by the migrations.</summary>
    public const string WriterLogin = "envio_writer";

    /// <summary>
    /// The batch, with <c>@database</c>, <c>@login</c>, <c>@password</c>, <c>@writerLogin</c> and <c>@writerPassword</c>
    /// declared before it. CREATE LOGIN takes no parameters: the names go through QUOTENAME, the passwords as quoted
    /// literals.
    /// </summary>
    public const string CreateLoginOwningDatabase = """
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
        """;

    /// <summary>The declarations <see cref="CreateLoginOwningDatabase"/> reads, as the AppHost runs it (bound parameters).</summary>
    internal const string Declarations =
        "DECLARE @database sysname = @databaseName, @login sysname = @loginName, @password nvarchar(128) = @loginPassword, " +
        "@writerLogin sysname = @writerName, @writerPassword nvarchar(128) = @writerSecret;\n";

    public static async Task EnsureLoginOwnsDatabaseAsync(
        string administratorConnectionString, string database, string login, string password, string writerLogin, string writerPassword,
        CancellationToken cancellationToken)
    {
        var master = new SqlConnectionStringBuilder(administratorConnectionString) { InitialCatalog = "master" };
        await using var connection = new SqlConnection(master.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new SqlCommand(
            Declarations + CreateLoginOwningDatabase, connection);
        command.Parameters.AddWithValue("@databaseName", database);
        command.Parameters.AddWithValue("@loginName", login);
        command.Parameters.AddWithValue("@loginPassword", password);
        command.Parameters.AddWithValue("@writerName", writerLogin);
        command.Parameters.AddWithValue("@writerSecret", writerPassword);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
