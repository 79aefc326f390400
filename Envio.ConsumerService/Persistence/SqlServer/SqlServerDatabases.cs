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

    private const int DatabaseAlreadyExists = 1801; // another replica created it between the check and the create

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
        await using var create = new SqlCommand(CreateIfMissing, connection);
        create.Parameters.AddWithValue("@name", target.InitialCatalog);
        try
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (SqlException e) when (e.Number == DatabaseAlreadyExists)
        {
        }
    }
}
