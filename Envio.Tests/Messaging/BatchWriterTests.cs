using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>
/// Batch isolation and retries on the real PostgreSQL and RabbitMQ of the shared stack, with a database and a
/// topology of their own (so the stack's consumers do not take these messages).
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class BatchWriterTests(EnvioStack stack) : IAsyncLifetime
{
    private readonly TopologyOptions _topology = Topologies.Private();
    private readonly string _database = $"writer_tests_{Guid.NewGuid():N}";
    private NpgsqlDataSource _source = null!;
    private IChannel _channel = null!;

    public async ValueTask InitializeAsync()
    {
        await using (var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres"))
        await using (var create = server.CreateCommand($"CREATE DATABASE {_database}"))
        {
            await create.ExecuteNonQueryAsync();
        }
        _source = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = _database }.ConnectionString);
        await Store(_source).MigrateAsync(default);
        _channel = await stack.Broker.CreateChannelAsync();
        await Topology.DeclareAsync(stack.Broker, Orders.Names(_topology), default);
    }

    public async ValueTask DisposeAsync()
    {
        await Topologies.DeleteAsync(_channel, _topology);
        await _channel.DisposeAsync();
        await _source.DisposeAsync();
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var drop = server.CreateCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        await drop.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task A_batch_with_an_order_the_database_refuses_commits_the_others_and_dead_letters_only_that_one()
    {
        var good = Enumerable.Range(0, 9).Select(i => SampleOrders.Create(20_000 + i)).ToList();
        var refused = SampleOrders.Create(20_100) with { Items = [new() { Sku = new string('x', 65), Quantity = 1, UnitPrice = 1m }], Total = 1m };
        List<Order> batch = [.. good[..4], refused, .. good[4..]];

        await WriteAsync(Writer(), Store(_source), batch.Select(o => (Deliver(o), Orders.Received(o))).ToList(), TestContext.Current.CancellationToken);

        Assert.Equal(9, await StoredOrders.CountAsync(_source, "orders", good.Select(o => o.OrderId).ToList()));
        var dead = await GetAsync(_topology.ErrorQueue);
        Assert.Equal(refused.OrderId.ToString(), dead!.BasicProperties.MessageId);
        Assert.Contains("refused", Header(dead, FailureHeaders.Reason), StringComparison.Ordinal);
        Assert.Null(await GetAsync(_topology.ErrorQueue));
    }

    [Fact]
    public async Task The_error_queue_keeps_why_the_database_refused_an_order_but_not_the_values_it_quoted()
    {
        // With Include Error Detail (an operator debugging), PostgreSQL's refusal carries "Failing row contains (…)":
        // the item's SKU in clear, which the encrypted body was meant to keep off the broker's disk.
        await using var detailed = NpgsqlDataSource.Create(DatabaseConnectionString + ";Include Error Detail=true");
        var refused = SampleOrders.Create(20_200) with { Items = [new() { Sku = "SKU-PRIVATE-7731", Quantity = 0, UnitPrice = 1m }], Total = 0m };

        await WriteAsync(Writer(), Store(detailed), [(Deliver(refused), Orders.Received(refused))], TestContext.Current.CancellationToken);

        var dead = await GetAsync(_topology.ErrorQueue);
        Assert.Equal(refused.OrderId.ToString(), dead!.BasicProperties.MessageId);
        var reason = Header(dead, FailureHeaders.Reason);
        var exception = Header(dead, FailureHeaders.Exception);
        Assert.Contains("23514", reason, StringComparison.Ordinal); // the check constraint, named
        Assert.Contains("order_items", reason, StringComparison.Ordinal);
        Assert.StartsWith("Npgsql.PostgresException: 23514", exception, StringComparison.Ordinal);
        Assert.DoesNotContain("SKU-PRIVATE-7731", reason, StringComparison.Ordinal);
        Assert.DoesNotContain("SKU-PRIVATE-7731", exception, StringComparison.Ordinal);
        Assert.DoesNotContain("\n   at ", exception, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batch_failing_transiently_while_the_database_answers_waits_in_the_first_retry_queue_with_its_attempt_counted()
    {
        var orders = new[] { SampleOrders.Create(21_000), SampleOrders.Create(21_001) };
        await using var waitsBriefly = StoreFailures.WaitingBriefly(DatabaseConnectionString);
        await using var locked = await StoreFailures.LockOrdersAsync(DatabaseConnectionString);

        await WriteAsync(Writer(Store(waitsBriefly)), Store(waitsBriefly), orders.Select(o => (Deliver(o), Orders.Received(o))).ToList(), TestContext.Current.CancellationToken);

        var retryQueue = _topology.RetryQueue(_topology.EffectiveRetryDelays[0]);
        foreach (var order in orders)
        {
            var waiting = await GetAsync(retryQueue);
            Assert.Equal(order.OrderId.ToString(), waiting!.BasicProperties.MessageId);
            Assert.Equal(1, FailurePublisher.AttemptsOf(waiting.BasicProperties));
        }
        Assert.Null(await GetAsync(_topology.ErrorQueue));
    }

    [Fact]
    public async Task After_the_last_retry_step_a_message_goes_to_the_error_queue_with_the_reason()
    {
        var order = SampleOrders.Create(22_000);
        await using var waitsBriefly = StoreFailures.WaitingBriefly(DatabaseConnectionString);
        await using var locked = await StoreFailures.LockOrdersAsync(DatabaseConnectionString);
        var exhausted = Deliver(order, attempts: _topology.EffectiveRetryDelays.Count);

        await WriteAsync(Writer(Store(waitsBriefly)), Store(waitsBriefly), [(exhausted, Orders.Received(order))], TestContext.Current.CancellationToken);

        var dead = await GetAsync(_topology.ErrorQueue);
        Assert.Equal(order.OrderId.ToString(), dead!.BasicProperties.MessageId);
        Assert.StartsWith($"Gave up after {_topology.EffectiveRetryDelays.Count + 1} attempts", Header(dead, FailureHeaders.Reason), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_retried_message_comes_back_to_the_work_queue_when_its_delay_is_over()
    {
        var fast = Topologies.Private(TimeSpan.FromMilliseconds(300));
        await Topology.DeclareAsync(stack.Broker, Orders.Names(fast), TestContext.Current.CancellationToken);
        try
        {
            var order = SampleOrders.Create(23_000);
            await using var waitsBriefly = StoreFailures.WaitingBriefly(DatabaseConnectionString);
            await using var failures = stack.FailurePublisher(fast);
            var writer = new BatchWriter(failures, Outage(Store(waitsBriefly)),
                Options.Create(new ConsumerOptions { QuickRetries = 0 }), NullLogger<BatchWriter>.Instance);
            await using (await StoreFailures.LockOrdersAsync(DatabaseConnectionString))
            {
                await writer.WriteAsync(Store(waitsBriefly).WriterOf(Orders.Type), Orders.Names(fast), [(Deliver(order), Orders.Received(order))], TestContext.Current.CancellationToken);
            }

            BasicGetResult? back = null;
            for (var i = 0; i < 50 && back is null; i++)
            {
                await Task.Delay(100, TestContext.Current.CancellationToken);
                back = await GetAsync(fast.Queue);
            }
            Assert.Equal(order.OrderId.ToString(), back?.BasicProperties.MessageId);
            Assert.Equal(1, FailurePublisher.AttemptsOf(back!.BasicProperties));
        }
        finally
        {
            await Topologies.DeleteAsync(_channel, fast);
        }
    }

    [Fact]
    public async Task While_the_database_does_not_answer_the_batch_waits_in_hand_and_no_message_is_moved()
    {
        var ct = TestContext.Current.CancellationToken;
        var orders = new[] { SampleOrders.Create(24_000), SampleOrders.Create(24_001) };
        await using var unreachable = NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Username=x;Password=x;Database=x;Timeout=2");
        var outage = Outage(Store(unreachable));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var writing = WriteAsync(Writer(Store(unreachable), outage), Store(unreachable), orders.Select(o => (Deliver(o), Orders.Received(o))).ToList(), stop.Token);
        await Task.Delay(TimeSpan.FromSeconds(8), ct); // quick retries, then probes: well past any retry step's start

        Assert.False(writing.IsCompleted, $"the write ended while the database was away: {writing.Exception?.InnerException?.Message}");
        Assert.True(outage.IsPaused);
        Assert.Equal("Degraded", (await outage.CheckHealthAsync(new(), ct)).Status.ToString());
        foreach (var queue in _topology.EffectiveRetryDelays.Select(_topology.RetryQueue).Append(_topology.ErrorQueue))
        {
            Assert.Null(await GetAsync(queue));
        }
        await stop.CancelAsync(); // the consumer stopping: the batch stays unacknowledged, for the broker to redeliver
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writing);
    }

    private TestStore Store(NpgsqlDataSource source) => TestStore.Postgres(
        source, new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = _database }.ConnectionString,
        stack.Keys, new ConsumerIdentity("writer-tests"));

    private static readonly ConsumerOptions Quick = new() { QuickRetries = 1, QuickRetryDelay = TimeSpan.FromMilliseconds(50) };

    private BatchWriter Writer(TestStore? probed = null, StoreOutage? outage = null) => new(
        stack.FailurePublisher(_topology), outage ?? Outage(probed ?? Store(_source)),
        Options.Create(Quick), NullLogger<BatchWriter>.Instance);

    private Task<Outcome[]> WriteAsync(BatchWriter writer, TestStore store, IReadOnlyList<(Delivery, Envio.ConsumerService.Persistence.Mapping.Received<Order>)> batch, CancellationToken ct) =>
        writer.WriteAsync(store.WriterOf(Orders.Type), Orders.Names(_topology), batch, ct);

    private static StoreOutage Outage(TestStore store) => StoreFailures.Outage(store, Quick);

    private string DatabaseConnectionString =>
        new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = _database }.ConnectionString;

    private static Delivery Deliver(Order order, int attempts = 0)
    {
        var properties = Orders.Envelope(order).ToProperties(WireFormat.ContentType);
        if (attempts > 0)
        {
            properties.Headers![FailureHeaders.Attempts] = attempts;
        }
        return new Delivery(1, 0, properties, Orders.Type.Serialize(order), Redelivered: false);
    }

    private Task<BasicGetResult?> GetAsync(string queue) => _channel.BasicGetAsync(queue, autoAck: true);

    private static string Header(BasicGetResult message, string name) =>
        System.Text.Encoding.UTF8.GetString((byte[])message.BasicProperties.Headers![name]!);
}

/// <summary>Throwaway topologies with names of their own.</summary>
public static class Topologies
{
    public static TopologyOptions Private(params TimeSpan[] retryDelays)
    {
        var name = $"envio.orders.test.{Guid.NewGuid():N}"; // within the broker user's permissions
        return new TopologyOptions
        {
            Exchange = name,
            Queue = name,
            ErrorExchange = $"{name}.error",
            ErrorQueue = $"{name}.error",
            RetryExchange = $"{name}.retry",
            ControlExchange = $"{name}.control",
            RetryDelays = retryDelays.Length > 0 ? retryDelays : null,
        };
    }

    public static async Task DeleteAsync(IChannel channel, TopologyOptions topology)
    {
        foreach (var queue in topology.EffectiveRetryDelays.Select(topology.RetryQueue).Append(topology.Queue).Append(topology.ErrorQueue))
        {
            await channel.QueueDeleteAsync(queue);
        }
        foreach (var exchange in new[] { topology.Exchange, topology.ErrorExchange, topology.RetryExchange })
        {
            await channel.ExchangeDeleteAsync(exchange);
        }
        if (topology.ControlExchange != new TopologyOptions().ControlExchange) // a test's own, not the stack's services'
        {
            await channel.QueueDeleteAsync(ConsumerControl.StateQueue(topology));
            foreach (var exchange in new[] { topology.ControlExchange, ConsumerControl.StateExchange(topology), ConsumerControl.RepliesExchange(topology) })
            {
                await channel.ExchangeDeleteAsync(exchange);
            }
        }
    }
}
