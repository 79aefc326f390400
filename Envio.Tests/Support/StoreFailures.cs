using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Envio.Tests.Support;

/// <summary>
/// Real ways for a write to fail on PostgreSQL. A batch failing while the database answers: a transaction of the
/// test's own holds the orders table, and a store whose sessions wait at most half a second for a lock fails its
/// insert (lock not available, a transient failure) while <c>SELECT 1</c> still answers.
/// </summary>
public static class StoreFailures
{
    /// <summary>Holds the orders table until disposed (an unpooled connection: closing it ends the transaction).</summary>
    public static async Task<NpgsqlConnection> LockOrdersAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var take = new NpgsqlCommand("BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", connection);
        await take.ExecuteNonQueryAsync();
        return connection;
    }

    /// <summary>The same database, with sessions that give up on a lock after half a second (or <paramref name="lockTimeout"/>).</summary>
    public static NpgsqlDataSource WaitingBriefly(string connectionString, TimeSpan? lockTimeout = null) =>
        NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString)
        {
            Options = $"-c lock_timeout={(int)(lockTimeout ?? TimeSpan.FromMilliseconds(500)).TotalMilliseconds}",
        }.ConnectionString);

    /// <summary>
    /// A PostgreSQL store that writes with <paramref name="source"/>'s sessions. For writing only: the data source's
    /// connection string carries no password, which migrations (DbUp) would need.
    /// </summary>
    public static TestStore Store(NpgsqlDataSource source, Envio.Contracts.Security.KeyRing keys, string writer) =>
        TestStore.Postgres(source, source.ConnectionString, keys, new ConsumerIdentity(writer));

    /// <summary>The consumer's outage watch over <paramref name="store"/>, as the service wires it.</summary>
    public static StoreOutage Outage(TestStore store, ConsumerOptions? options = null) =>
        new(store.Probe, Options.Create(options ?? new ConsumerOptions()), new ApplicationLifetime(NullLogger<ApplicationLifetime>.Instance),
            NullLogger<StoreOutage>.Instance);
}
