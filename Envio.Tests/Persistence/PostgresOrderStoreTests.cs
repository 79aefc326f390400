using System.Data.Common;
using Envio.ConsumerService.Persistence;
using Envio.ConsumerService.Persistence.Postgres;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Npgsql;

namespace Envio.Tests.Persistence;

/// <summary>The PostgreSQL store on the real PostgreSQL server of the shared stack, in a database of its own.</summary>
[Collection(AppHostTests.Name)]
public sealed class PostgresOrderStoreTests(EnvioStack stack) : OrderStoreContract
{
    private readonly List<NpgsqlDataSource> _sources = [];

    protected override async Task<string?> CreateDatabaseAsync()
    {
        var name = $"store_tests_{Guid.NewGuid():N}";
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var create = server.CreateCommand($"CREATE DATABASE {name}");
        await create.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = name }.ConnectionString;
    }

    protected override TestStore CreateStore(string connectionString, KeyRing keys, ConsumerIdentity? identity = null)
    {
        var source = NpgsqlDataSource.Create(connectionString);
        _sources.Add(source);
        return TestStore.Postgres(source, connectionString, keys, identity ?? Identity, Loggers);
    }

    protected override DbConnection Connect(string connectionString) => new NpgsqlConnection(connectionString);

    protected override async Task<IAsyncDisposable> HoldMigrationLockAsync(string connectionString)
    {
        // Unpooled: closing ends the session, and with it the lock.
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var take = new NpgsqlCommand($"SELECT pg_advisory_lock({PostgresMigrator.MigrationLockKey})", connection);
        await take.ExecuteNonQueryAsync();
        return connection;
    }

    protected override string MigrationsFolder => "Postgres";

    protected override async Task DropDatabaseAsync(string connectionString)
    {
        foreach (var source in _sources)
        {
            await source.DisposeAsync();
        }
        NpgsqlConnection.ClearAllPools();
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var drop = server.CreateCommand(
            $"DROP DATABASE IF EXISTS {new NpgsqlConnectionStringBuilder(connectionString).Database} WITH (FORCE)");
        await drop.ExecuteNonQueryAsync();
    }
}
