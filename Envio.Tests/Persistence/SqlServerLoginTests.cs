using Envio.AppHost.Hosting;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;

namespace Envio.Tests.Persistence;

/// <summary>
/// The consumer's own login (<see cref="SqlServerLogins"/>; the AppHost runs it on its development container, the
/// deployment's bootstrap step the same batch): it logs in, owns its database, where the consumer's migrations create
/// tables, and is given nothing else.
/// </summary>
public sealed class SqlServerLoginTests
{
    [Fact]
    public async Task The_consumers_login_owns_its_database_and_can_create_no_other()
    {
        if (TestSqlServer.Unavailable is { } reason)
        {
            Assert.Skip(reason);
        }
        var ct = TestContext.Current.CancellationToken;
        var administrator = TestSqlServer.ConnectionString!;
        var database = $"envio_login_{Guid.NewGuid():N}";
        var login = $"envio_{Guid.NewGuid():N}"[..20];
        var writer = $"writer_{Guid.NewGuid():N}"[..20];
        const string password = "Consumer0Password1Letters";
        try
        {
            await SqlServerLogins.EnsureLoginOwnsDatabaseAsync(administrator, database, login, password, writer, password, ct);
            await SqlServerLogins.EnsureLoginOwnsDatabaseAsync(administrator, database, login, password, writer, password, ct); // again: idempotent

            // The writer logs in (to master: it becomes a user of the database through the consumer's migrations) and can create nothing.
            await using (var asWriter = new SqlConnection(new SqlConnectionStringBuilder(administrator) { UserID = writer, Password = password, InitialCatalog = "master", Pooling = false }.ConnectionString))
            {
                await asWriter.OpenAsync(ct);
                await using var createAsWriter = new SqlCommand($"CREATE DATABASE [{database}_writers]", asWriter);
                await Assert.ThrowsAsync<SqlException>(() => createAsWriter.ExecuteNonQueryAsync(ct));
            }

            var consumer = new SqlConnectionStringBuilder(administrator) { UserID = login, Password = password, InitialCatalog = database, Pooling = false };
            // What the consumer does first at start (through master), then its migrations.
            await Envio.ConsumerService.Persistence.SqlServer.SqlServerDatabases.EnsureExistsAsync(consumer.ConnectionString, ct);
            await using var connection = new SqlConnection(consumer.ConnectionString);
            await connection.OpenAsync(ct);
            await using (var create = new SqlCommand("CREATE TABLE dbo.migrated (id int PRIMARY KEY); INSERT INTO dbo.migrated VALUES (1);", connection))
            {
                await create.ExecuteNonQueryAsync(ct);
            }
            await using (var read = new SqlCommand("SELECT COUNT(*) FROM dbo.migrated", connection))
            {
                Assert.Equal(1, await read.ExecuteScalarAsync(ct));
            }
            await using var createDatabase = new SqlCommand($"CREATE DATABASE [{database}_other]", connection);
            await Assert.ThrowsAsync<SqlException>(() => createDatabase.ExecuteNonQueryAsync(ct));
        }
        finally
        {
            SqlConnection.ClearAllPools();
            await using var connection = new SqlConnection(new SqlConnectionStringBuilder(administrator) { InitialCatalog = "master" }.ConnectionString);
            await connection.OpenAsync(ct);
            await using var drop = new SqlCommand(
                $"IF DB_ID(N'{database}') IS NOT NULL DROP DATABASE [{database}]; IF SUSER_ID(N'{login}') IS NOT NULL DROP LOGIN [{login}]; " +
                $"IF SUSER_ID(N'{writer}') IS NOT NULL DROP LOGIN [{writer}];", connection);
            await drop.ExecuteNonQueryAsync(ct);
        }
    }
}
