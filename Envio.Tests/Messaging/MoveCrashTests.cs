using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Envio.Tests.Messaging;

/// <summary>
/// Invariant 8: a move (to a retry queue, to the error queue) is a confirmed publish first and the original's ack
/// second, so a crash between the two leaves the message in both places, never in neither, and the idempotent
/// insert stores it once. The crash point is made exact: the consumer's connection records what is done on its
/// channels (<see cref="ChannelCalls"/>) and its first ack is held instead of sent; at that instant the copy must
/// already be confirmed in the retry queue. Then the consumer dies there (its connection aborted, the ack never sent),
/// the broker hands the original back to the work queue, and a consumer started afterwards stores the original and,
/// once its delay is over, absorbs the copy.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class MoveCrashTests(EnvioStack stack) : IAsyncLifetime
{
    /// <summary>Long enough that the copy is still in the retry queue while the test counts both places.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(60);

    private readonly string _database = $"move_crash_tests_{Guid.NewGuid():N}";
    private NpgsqlDataSource _source = null!;

    private string DatabaseConnectionString => new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = _database }.ConnectionString;

    public async ValueTask InitializeAsync()
    {
        await using (var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres"))
        await using (var create = server.CreateCommand($"CREATE DATABASE {_database}"))
        {
            await create.ExecuteNonQueryAsync();
        }
        _source = NpgsqlDataSource.Create(DatabaseConnectionString);
        await TestStore.Postgres(_source, DatabaseConnectionString, stack.Keys, new ConsumerIdentity("move-crash")).MigrateAsync(default);
    }

    public async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var drop = server.CreateCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        await drop.ExecuteNonQueryAsync();
    }

    [Fact(Timeout = 600_000)]
    public async Task A_consumer_dying_between_a_retry_moves_confirmed_publish_and_the_ack_leaves_the_order_in_both_queues_and_it_is_stored_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private(RetryDelay);
        var retryQueue = topology.RetryQueue(RetryDelay);
        var order = SampleOrders.Create(96_100);
        await using var restarted = new InProcessPipeline(stack, topology);
        await using var dying = new InProcessPipeline(stack, topology);
        await dying.StartPublisherAsync();

        var (consuming, moves) = (new ChannelCalls(), new ChannelCalls());
        var crashPoint = new TaskCompletionSource<ChannelCalls.ChannelCall>(TaskCreationOptions.RunContinuationsAsynchronously);
        var crashed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        consuming.Intercept = call => call.Method == nameof(IChannel.BasicAckAsync) && crashPoint.TrySetResult(call)
            ? HeldUntilCrashAsync(crashed.Task)
            : null;
        await using var connection = await stack.BrokerFactory.CreateConnectionAsync(ct);
        await using var waitsBriefly = StoreFailures.WaitingBriefly(DatabaseConnectionString);
        var locked = await StoreFailures.LockOrdersAsync(DatabaseConnectionString);
        try
        {
            // The database answers but refuses the write for now (a transient failure): the order is moved to the retry queue.
            await dying.StartConsumerAsync(store: StoreFailures.Store(waitsBriefly, stack.Keys, "move-crash/1"),
                connection: ChannelCalls.Of(connection, consuming), moves: ChannelCalls.Recording(stack.BrokerFactory, moves));
            await dying.PublishAsync([InProcessPipeline.Message(order)], ct);
            var ack = await crashPoint.Task.WaitAsync(TimeSpan.FromMinutes(3), ct);

            // The instant the consumer asks for the ack: the copy is confirmed in the retry queue already.
            var confirmed = moves.Snapshot().Where(c => c.Method == nameof(IChannel.BasicPublishAsync) && c.Completed).ToList();
            Assert.True(confirmed.Count == 1, $"{confirmed.Count} moves confirmed before the ack, not 1");
            Assert.True(confirmed[0].Sequence < ack.Sequence, "the ack was asked for before the move's publish was confirmed");
            Assert.Equal(1u, await stack.ReadyInPrivateQueueAsync(retryQueue, ct));

            // The crash: the connection goes without the ack; the broker returns the original to the work queue.
            await connection.CloseAsync(Constants.ReplySuccess, "the consumer crashed", TimeSpan.FromSeconds(10), abort: true, ct);
            crashed.TrySetResult();
            await dying.DisposeConsumerAsync();
            await WaitForAsync(async () => await stack.ReadyInPrivateQueueAsync(topology.Queue, ct) == 1, "the original back in the work queue", ct);
            Assert.Equal(1u, await stack.ReadyInPrivateQueueAsync(retryQueue, ct)); // both places, at worst
        }
        finally
        {
            crashed.TrySetResult();
            await locked.DisposeAsync();
        }

        // A consumer started after the crash, with the database writable again: the original, then the copy.
        await restarted.StartConsumerAsync(store: TestStore.Postgres(_source, DatabaseConnectionString, stack.Keys, new ConsumerIdentity("move-crash/2")));
        Assert.Equal(1, await StoredOrders.WaitForAsync(_source, [order.OrderId], TimeSpan.FromMinutes(2)));
        await WaitForAsync(async () => await stack.ReadyInPrivateQueueAsync(retryQueue, ct) == 0, "the copy's delay to end", ct);
        await WaitForAsync(async () => await stack.ReadyInPrivateQueueAsync(topology.Queue, ct) == 0, "the copy to be consumed", ct);
        await restarted.DisposeConsumerAsync(); // what it still held unacknowledged goes back, and is counted below

        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(topology.Queue, ct));
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(retryQueue, ct));
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(topology.ErrorQueue, ct));
        Assert.Equal(1, await StoredOrders.CountAsync(_source, "orders", [order.OrderId]));
        Assert.Equal(order.Items.Count, await StoredOrders.CountAsync(_source, "order_items", [order.OrderId]));
    }

    /// <summary>The held ack: never sent; once the process "died", it fails as an ack on a lost connection does.</summary>
    private static async Task HeldUntilCrashAsync(Task crashed)
    {
        await crashed;
        throw new AlreadyClosedException(new ShutdownEventArgs(ShutdownInitiator.Application, Constants.ReplySuccess, "the consumer crashed"));
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Waited in vain for {what}.");
            await Task.Delay(250, ct);
        }
    }
}
