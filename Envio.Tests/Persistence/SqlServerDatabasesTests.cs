using Envio.ConsumerService.Persistence.SqlServer;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;

namespace Envio.Tests.Persistence;

/// <summary>
/// Consumer replicas started together each make sure their database exists (<see cref="SqlServerDatabases"/>): both
/// may find it missing and both create it. The one that loses the race must go on, whatever the server calls it
/// (SQL Server: 1801, database exists; Babelfish: 2627, a duplicate key in its own catalog). Before, Babelfish's
/// answer ended the losing replica's process at start, and a stack of two replicas ran one.
/// </summary>
public sealed class SqlServerDatabasesTests
{
    [Fact]
    public async Task Replicas_creating_the_same_database_at_once_all_go_on_and_it_exists_once()
    {
        if (TestSqlServer.Unavailable is { } reason)
        {
            Assert.Skip(reason);
        }
        var ct = TestContext.Current.CancellationToken;
        for (var round = 0; round < 5; round++)
        {
            var database = new SqlConnectionStringBuilder(TestSqlServer.ConnectionString!) { InitialCatalog = $"envio_race_{Guid.NewGuid():N}" }.ConnectionString;
            try
            {
                // Six replicas at once, each on a connection of its own.
                await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => SqlServerDatabases.EnsureExistsAsync(database, ct), ct)));

                await using var connection = new SqlConnection(new SqlConnectionStringBuilder(database) { InitialCatalog = "master" }.ConnectionString);
                await connection.OpenAsync(ct);
                await using var count = new SqlCommand("SELECT COUNT(*) FROM sys.databases WHERE name = @name", connection);
                count.Parameters.AddWithValue("@name", new SqlConnectionStringBuilder(database).InitialCatalog);
                Assert.Equal(1, await count.ExecuteScalarAsync(ct));
            }
            finally
            {
                await TestSqlServer.DropDatabaseAsync(database);
            }
        }
    }
}
