using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Envio.Tests.Messaging;

/// <summary>
/// A database outage longer than the broker lets a consumer hold a delivery (its <c>consumer_timeout</c>, after which
/// RabbitMQ 4.3 cancels the consumer and earlier versions close its channel): the consumer hands the batch and its
/// buffer back before that, stops consuming while the database is away, and consumes again when it answers. The
/// outage is real: the test's own database refuses every connection (<c>ALLOW_CONNECTIONS false</c>, its sessions
/// ended), so the write and the probe both fail, and the hold limit is shortened to seconds. (Invariant 19.)
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class OutageHandBackTests(EnvioStack stack) : IAsyncLifetime
{
    private readonly string _database = $"outage_tests_{Guid.NewGuid():N}";
    private NpgsqlDataSource _source = null!;

    public async ValueTask InitializeAsync()
    {
        await AdminAsync($"CREATE DATABASE {_database}");
        _source = NpgsqlDataSource.Create(DatabaseConnectionString);
        await Store.MigrateAsync(default);
    }

    public async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync();
        await AdminAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
    }

    [Fact]
    public async Task A_batch_held_through_an_outage_past_the_hold_limit_goes_back_to_its_queue_and_is_stored_when_the_database_answers()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync();
        await pipeline.StartConsumerAsync(store: Store, options: new ConsumerOptions
        {
            Channels = 1,
            QuickRetries = 0,
            OutageProbeDelay = TimeSpan.FromMilliseconds(200),
            OutageProbeMaxDelay = TimeSpan.FromMilliseconds(500),
            OutageHoldLimit = TimeSpan.FromSeconds(3),
        });
        var orders = Enumerable.Range(0, 5).Select(i => SampleOrders.Create(95_000 + i)).ToList();

        await RefuseConnectionsAsync(true);
        await pipeline.PublishAsync(orders.Select(o => InProcessPipeline.Message(o)), ct);

        // Handed back: all five ready in the queue again, nobody consuming while the database is away, nothing moved.
        var (ready, consumers) = await WaitForQueueAsync(pipeline.Names.Queue, q => q is (5, 0), ct);
        Assert.Equal((5u, 0u), (ready, consumers));
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(pipeline.Topology.ErrorQueue, ct));
        Assert.Contains(pipeline.ConsumerLog.Collector.GetSnapshot(), r => r.Message.Contains("handed back", StringComparison.Ordinal));

        await RefuseConnectionsAsync(false);

        Assert.Equal(5, await StoredOrders.WaitForAsync(_source, [.. orders.Select(o => o.OrderId)], TimeSpan.FromSeconds(30)));
        Assert.Equal((0u, 1u), await WaitForQueueAsync(pipeline.Names.Queue, q => q is (0, 1), ct));
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(pipeline.Topology.ErrorQueue, ct));
        Assert.Equal(HealthStatus.Healthy, (await pipeline.Consumer.CheckHealthAsync(new HealthCheckContext(), ct)).Status);
    }

    private TestStore Store => TestStore.Postgres(_source, DatabaseConnectionString, stack.Keys, new ConsumerIdentity("outage-tests"));

    private string DatabaseConnectionString =>
        new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = _database }.ConnectionString;

    /// <summary>The database refuses new sessions and ends the ones open (the pool's), or takes them again.</summary>
    private Task RefuseConnectionsAsync(bool refuse) => refuse
        ? AdminAsync($"ALTER DATABASE {_database} ALLOW_CONNECTIONS false; " +
            $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{_database}'")
        : AdminAsync($"ALTER DATABASE {_database} ALLOW_CONNECTIONS true");

    private async Task AdminAsync(string sql)
    {
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var command = server.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<(uint Ready, uint Consumers)> WaitForQueueAsync(string queue, Func<(uint, uint), bool> until, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        (uint, uint) last;
        while (true)
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            var declared = await channel.QueueDeclarePassiveAsync(queue, ct);
            last = (declared.MessageCount, declared.ConsumerCount);
            if (until(last) || DateTime.UtcNow > deadline)
            {
                return last;
            }
            await Task.Delay(200, ct);
        }
    }
}
