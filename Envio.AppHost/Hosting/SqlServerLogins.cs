using Microsoft.Data.SqlClient;

namespace Envio.AppHost.Hosting;

/// <summary>
/// The consumer's own SQL Server login, owner of its database and of nothing else (no server role): run once with the
/// administrator's credentials, by the AppHost for its development container and by the deployment's bootstrap step
/// (deploy/compose/sqlserver/bootstrap.sql, the same batch after sqlcmd's variables). Running it again sets the
/// password again: that is how it rotates.
/// </summary>
public static class SqlServerLogins
{
    /// <summary>The consumer's login name, in the AppHost's model and in deploy/compose.</summary>
    public const string ConsumerLogin = "envio";

    /// <summary>
    /// The batch, with <c>@database</c>, <c>@login</c> and <c>@password</c> declared before it. CREATE LOGIN takes no
    /// parameters: the names go through QUOTENAME, the password as a quoted literal.
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
        """;

    public static async Task EnsureLoginOwnsDatabaseAsync(
        string administratorConnectionString, string database, string login, string password, CancellationToken cancellationToken)
    {
        var master = new SqlConnectionStringBuilder(administratorConnectionString) { InitialCatalog = "master" };
        await using var connection = new SqlConnection(master.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new SqlCommand(
            "DECLARE @database sysname = @databaseName, @login sysname = @loginName, @password nvarchar(128) = @loginPassword;\n" + CreateLoginOwningDatabase,
            connection);
        command.Parameters.AddWithValue("@databaseName", database);
        command.Parameters.AddWithValue("@loginName", login);
        command.Parameters.AddWithValue("@loginPassword", password);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
