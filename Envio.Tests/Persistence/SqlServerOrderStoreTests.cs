using System.Data.Common;
using Envio.ConsumerService.Persistence;
using Envio.ConsumerService.Persistence.SqlServer;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;

namespace Envio.Tests.Persistence;

/// <summary>The SQL Server store on a real SQL Server wire-protocol server (<see cref="TestSqlServer"/>), in a database of its own.</summary>
public sealed class SqlServerOrderStoreTests : OrderStoreContract
{
    protected override async Task<string?> CreateDatabaseAsync() => TestSqlServer.ConnectionString is { } server
        ? await TestSqlServer.CreateDatabaseAsync(server, "envio_store_tests")
        : null;

    protected override TestStore CreateStore(string connectionString, KeyRing keys, ConsumerIdentity? identity = null) =>
        TestStore.SqlServer(connectionString, keys, identity ?? Identity, Loggers);

    protected override string? Unavailable => TestSqlServer.Unavailable;

    protected override DbConnection Connect(string connectionString) => new SqlConnection(connectionString);

    protected override string MigrationsFolder => "SqlServer";

    protected override Task DropDatabaseAsync(string connectionString) => TestSqlServer.DropDatabaseAsync(connectionString);

    protected override async Task<IAsyncDisposable> HoldMigrationLockAsync(string connectionString)
    {
        // Unpooled: closing ends the session, and with it the lock.
        var connection = new SqlConnection(new SqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var take = SqlServerMigrator.TakeMigrationLockCommand(connection);
        await take.ExecuteNonQueryAsync();
        return connection;
    }
}
