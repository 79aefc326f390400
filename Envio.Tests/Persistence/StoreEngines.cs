using System.Data.Common;
using Envio.ConsumerService.Persistence;
using Envio.ConsumerService.Persistence.Postgres;
using Envio.ConsumerService.Persistence.SqlServer;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Envio.Tests.Persistence;

/// <summary>One engine's real server for the store tests: a database of a test class's own, its store, its lock.</summary>
public interface IStoreEngine : IAsyncDisposable
{
    /// <summary>Why this engine cannot be tested here, or null when it can.</summary>
    string? Unavailable { get; }

    /// <summary>The folder of this engine's migrations (<c>Persistence/Migrations/&lt;folder&gt;</c>).</summary>
    string MigrationsFolder { get; }

    /// <summary>Creates an empty database and returns its connection string; null when the engine is not available.</summary>
    Task<string?> CreateDatabaseAsync();

    TestStore CreateStore(string connectionString, KeyRing keys, ConsumerIdentity identity, ILoggerFactory loggers);

    DbConnection Connect(string connectionString);

    Task DropDatabaseAsync(string connectionString);

    /// <summary>Takes the store's migration lock on a connection of its own, as a replica migrating would; disposing releases it.</summary>
    Task<IAsyncDisposable> HoldMigrationLockAsync(string connectionString);
}

/// <summary>The shared stack's PostgreSQL server.</summary>
public sealed class PostgresEngine(EnvioStack stack) : IStoreEngine
{
    private readonly List<NpgsqlDataSource> _sources = [];

    public string? Unavailable => null;

    public string MigrationsFolder => "Postgres";

    public async Task<string?> CreateDatabaseAsync()
    {
        var name = $"store_tests_{Guid.NewGuid():N}";
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var create = server.CreateCommand($"CREATE DATABASE {name}");
        await create.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = name }.ConnectionString;
    }

    public TestStore CreateStore(string connectionString, KeyRing keys, ConsumerIdentity identity, ILoggerFactory loggers)
    {
        var source = NpgsqlDataSource.Create(connectionString);
        _sources.Add(source);
        return TestStore.Postgres(source, connectionString, keys, identity, loggers);
    }

    public DbConnection Connect(string connectionString) => new NpgsqlConnection(connectionString);

    public async Task<IAsyncDisposable> HoldMigrationLockAsync(string connectionString)
    {
        // Unpooled: closing ends the session, and with it the lock.
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var take = new NpgsqlCommand($"SELECT pg_advisory_lock({PostgresMigrator.MigrationLockKey})", connection);
        await take.ExecuteNonQueryAsync();
        return connection;
    }

    public async Task DropDatabaseAsync(string connectionString)
    {
        NpgsqlConnection.ClearAllPools();
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var drop = server.CreateCommand(
            $"DROP DATABASE IF EXISTS {new NpgsqlConnectionStringBuilder(connectionString).Database} WITH (FORCE)");
        await drop.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var source in _sources)
        {
            await source.DisposeAsync();
        }
    }
}

/// <summary>The SQL Server wire-protocol server the tests are given (<see cref="TestSqlServer"/>).</summary>
public sealed class SqlServerEngine : IStoreEngine
{
    public string? Unavailable => TestSqlServer.Unavailable;

    public string MigrationsFolder => "SqlServer";

    public async Task<string?> CreateDatabaseAsync() => TestSqlServer.ConnectionString is { } server
        ? await TestSqlServer.CreateDatabaseAsync(server, "envio_store_tests")
        : null;

    public TestStore CreateStore(string connectionString, KeyRing keys, ConsumerIdentity identity, ILoggerFactory loggers) =>
        TestStore.SqlServer(connectionString, keys, identity, loggers);

    public DbConnection Connect(string connectionString) => new SqlConnection(connectionString);

    public Task DropDatabaseAsync(string connectionString) => TestSqlServer.DropDatabaseAsync(connectionString);

    public async Task<IAsyncDisposable> HoldMigrationLockAsync(string connectionString)
    {
        // Unpooled: closing ends the session, and with it the lock.
        var connection = new SqlConnection(new SqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var take = SqlServerMigrator.TakeMigrationLockCommand(connection);
        await take.ExecuteNonQueryAsync();
        return connection;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
