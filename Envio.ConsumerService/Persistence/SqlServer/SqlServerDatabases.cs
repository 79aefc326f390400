using System.Globalization;
using Microsoft.Data.SqlClient;

namespace Envio.ConsumerService.Persistence.SqlServer;

/// <summary>
/// Creates the database a SQL Server connection string names when the server does not have it yet: the AppHost does
/// it for its own container, the consumer for a server it is merely given (a compose deployment), before migrating.
/// </summary>
public static class SqlServerDatabases
{
    /// <summary>The one statement; parsed by the T-SQL tests like every other.</summary>
    public const string CreateIfMissing = """
        IF DB_ID(@name) IS NULL
        BEGIN
            DECLARE @create nvarchar(300) = N'CREATE DATABASE ' + QUOTENAME(@name);
            EXEC sys.sp_executesql @create;
        END
        """;

    /// <summary>Whether it exists now (after a create that failed); parsed by the T-SQL tests too.</summary>
    public const string Exists = "SELECT CASE WHEN DB_ID(@name) IS NULL THEN 0 ELSE 1 END";

    private const int Attempts = 3;

    public static async Task EnsureExistsAsync(string connectionString, CancellationToken cancellationToken)
    {
        var target = new SqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(target.InitialCatalog))
        {
            return;
        }
        var server = new SqlConnectionStringBuilder(connectionString) { InitialCatalog = "master" };
        await using var connection = new SqlConnection(server.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await RunAsync(connection, CreateIfMissing, target.InitialCatalog, cancellationToken);
                return;
            }
            catch (SqlException) when (attempt < Attempts)
            {
                // Another replica created it between the check and the create. SQL Server says so (1801); Babelfish
                // fails inside its own catalog, in words that vary (a duplicate key in babelfish_sysdatabases, a
                // schema that exists). Whatever the words, the database is there now, or the create is tried again.
                if (Convert.ToInt32(await RunAsync(connection, Exists, target.InitialCatalog, cancellationToken), CultureInfo.InvariantCulture) == 1)
                {
                    return;
                }
            }
        }
    }

    private static async Task<object?> RunAsync(SqlConnection connection, string sql, string name, CancellationToken cancellationToken)
    {
        await using var command = new SqlCommand(sql, connection);
        command.Parameters.AddWithValue("@name", name);
        return await command.ExecuteScalarAsync(cancellationToken);
    }
}
