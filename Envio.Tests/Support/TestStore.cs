using Envio.ConsumerService.Persistence;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.ConsumerService.Persistence.Postgres;
using Envio.ConsumerService.Persistence.SqlServer;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Envio.Tests.Support;

/// <summary>
/// A store as the consumer wires it, for a database of a test's own: its writers (one per registered type), its
/// migrator and its probe. Orders' writer is at hand, as most store tests write orders.
/// </summary>
public sealed class TestStore(IStoreWriters writers, IStoreMigrator migrator, IStoreProbe probe)
{
    /// <summary>Every registered type's table map, as the consumer builds them.</summary>
    public static TableMaps Maps { get; } = new(DataObjectTypes.Registered);

    private readonly ITableWriter<Order> _orders = writers.WriterOf(Maps.For(Orders.Type));

    /// <summary>PostgreSQL's store; with <paramref name="ownerConnectionString"/>, migrated by that role and written by the data source's.</summary>
    public static TestStore Postgres(NpgsqlDataSource dataSource, string connectionString, KeyRing keys, ConsumerIdentity identity, ILoggerFactory? loggers = null, string? ownerConnectionString = null)
    {
        var factory = loggers ?? NullLoggerFactory.Instance;
        return new TestStore(new PostgresWriters(dataSource, keys, identity, factory),
            new PostgresMigrator(dataSource, new StoreSettings(StoreEngine.Postgres, connectionString, ownerConnectionString), factory.CreateLogger<PostgresMigrator>()),
            new PostgresProbe(dataSource, identity));
    }

    /// <summary>SQL Server's store; with <paramref name="ownerConnectionString"/>, migrated by that login and written by <paramref name="connectionString"/>'s.</summary>
    public static TestStore SqlServer(string connectionString, KeyRing keys, ConsumerIdentity identity, ILoggerFactory? loggers = null, string? ownerConnectionString = null)
    {
        var factory = loggers ?? NullLoggerFactory.Instance;
        var settings = new StoreSettings(StoreEngine.SqlServer, connectionString, ownerConnectionString);
        return new TestStore(new SqlServerWriters(settings, keys, identity, factory),
            new SqlServerMigrator(settings, factory.CreateLogger<SqlServerMigrator>()), new SqlServerProbe(settings, identity));
    }

    public IStoreWriters Writers => writers;

    public IStoreMigrator Migrator => migrator;

    public IStoreProbe Probe => probe;

    public Task MigrateAsync(CancellationToken cancellationToken) => migrator.MigrateAsync(cancellationToken);

    /// <summary>What the consumer does at start: migrate, then grant the runtime identity what writing needs.</summary>
    public async Task MigrateAndGrantAsync(CancellationToken cancellationToken)
    {
        await migrator.MigrateAsync(cancellationToken);
        await migrator.GrantWritingAsync(Maps.Shapes, cancellationToken);
    }

    /// <summary>What the database lacks for the registered types (the consumer refuses to start on any).</summary>
    public Task<IReadOnlyList<string>> SchemaProblemsAsync(CancellationToken cancellationToken) => migrator.SchemaProblemsAsync(Maps.Shapes, cancellationToken);

    public ITableWriter<T> WriterOf<T>(DataObjectType<T> type) where T : class => writers.WriterOf(Maps.For(type));

    public Task<int> InsertAsync(IReadOnlyList<Received<Order>> orders, CancellationToken cancellationToken) => _orders.InsertAsync(orders, cancellationToken);

    public Task<bool> TakesWritesAsync(CancellationToken cancellationToken) => probe.TakesWritesAsync(cancellationToken);

    /// <summary>An order as a message brought it.</summary>
    public static Received<Order> Received(Order order, string? correlationId = "store-test", string? clientId = null) =>
        new(order, order.OrderId, correlationId, clientId);
}
