using System.Data.Common;
using Envio.ConsumerService.Persistence;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Envio.Tests.Persistence;

/// <summary>
/// What every store must do, run against a real server for each engine: each test class gets a database of its own,
/// migrated by the store itself.
/// </summary>
public abstract class OrderStoreContract : IAsyncLifetime
{
    protected static readonly ConsumerIdentity Identity = new("store-tests/1");

    /// <summary>Creates an empty database and returns its connection string; null when the engine is not available.</summary>
    protected abstract Task<string?> CreateDatabaseAsync();

    protected abstract IOrderStore CreateStore(string connectionString);

    protected abstract DbConnection Connect(string connectionString);

    protected abstract Task DropDatabaseAsync(string connectionString);

    /// <summary>Why this engine cannot be tested here, or null when it can.</summary>
    protected virtual string? Unavailable => null;

    private string? _connectionString;

    protected IOrderStore Store { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _connectionString = await CreateDatabaseAsync();
        if (_connectionString is not null)
        {
            Store = CreateStore(_connectionString);
            await Store.MigrateAsync(TestContext.Current.CancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connectionString is not null)
        {
            await DropDatabaseAsync(_connectionString);
        }
        GC.SuppressFinalize(this);
    }

    private string ConnectionString => _connectionString
        ?? throw new InvalidOperationException("No database for this engine.");

    [Fact]
    public async Task Inserts_orders_with_their_items()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var batch = Received(SampleOrders.Create(1), SampleOrders.Create(2, items: 1));

        Assert.Equal(2, await Store.InsertAsync(batch, TestContext.Current.CancellationToken));

        Assert.Equal(2, await CountAsync("orders"));
        Assert.Equal(4, await CountAsync("order_items"));
    }

    [Fact]
    public async Task An_order_already_stored_is_ignored()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var order = SampleOrders.Create(3);
        await Store.InsertAsync(Received(order), TestContext.Current.CancellationToken);

        var inserted = await Store.InsertAsync(Received(order with { Total = order.Total }, SampleOrders.Create(4)), TestContext.Current.CancellationToken);

        Assert.Equal(1, inserted);
        Assert.Equal(2, await CountAsync("orders"));
        Assert.Equal(6, await CountAsync("order_items"));
    }

    [Fact]
    public async Task A_batch_holding_the_same_order_twice_stores_it_once()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var order = SampleOrders.Create(5);

        var inserted = await Store.InsertAsync(Received(order, SampleOrders.Create(6), order), TestContext.Current.CancellationToken);

        Assert.Equal(2, inserted);
        Assert.Equal(2, await CountAsync("orders"));
        Assert.Equal(6, await CountAsync("order_items"));
    }

    [Fact]
    public async Task A_failure_in_the_middle_of_a_batch_leaves_nothing_behind()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var tooLong = SampleOrders.Create(8) with { Items = [new() { Sku = new string('x', 65), Quantity = 1, UnitPrice = 1m }], Total = 1m };

        await Assert.ThrowsAnyAsync<DbException>(() =>
            Store.InsertAsync(Received(SampleOrders.Create(7), tooLong, SampleOrders.Create(9)), TestContext.Current.CancellationToken));

        Assert.Equal(0, await CountAsync("orders"));
        Assert.Equal(0, await CountAsync("order_items"));
    }

    [Fact]
    public async Task Migrations_run_once_when_replicas_start_together()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var replicas = Enumerable.Range(0, 4).Select(_ => CreateStore(ConnectionString)).ToList();

        await Task.WhenAll(replicas.Select(r => r.MigrateAsync(TestContext.Current.CancellationToken)));

        Assert.Equal(1, await CountAsync("schemaversions"));
    }

    protected static List<ReceivedOrder> Received(params Envio.Contracts.Orders.Order[] orders) =>
        orders.Select(o => new ReceivedOrder(o, "store-test")).ToList();

    private async Task<long> CountAsync(string table)
    {
        await using var connection = Connect(ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table}";
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    protected static ILogger<T> Log<T>() => NullLogger<T>.Instance;
}
