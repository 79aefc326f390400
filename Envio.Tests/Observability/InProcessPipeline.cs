using Envio.ApiService.Messaging;
using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Messaging;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.Tests.Observability;

/// <summary>
/// The real publisher and the real consumer (sessions, batches, writer, failure moves, PostgreSQL store) running inside
/// the test process, where their spans, measurements and logs can be captured, against the shared stack's broker and
/// database. The topology is private and the consumer takes orders only, so the stack's own consumers never take
/// these messages and this one never takes theirs.
/// </summary>
public sealed class InProcessPipeline(EnvioStack stack, TopologyOptions? topology = null) : IAsyncDisposable
{
    private Consumer? _consumer;
    private ConsumerControlListener? _listener;
    private FailurePublisher? _failures;
    private StoreOutage? _outage;

    public TopologyOptions Topology { get; } = topology ?? Topologies.Private();

    public QueueNames Names => Orders.Names(Topology);

    public FakeLogger<MessagePublisher> PublisherLog { get; } = new();

    public FakeLogger<Consumer> ConsumerLog { get; } = new();

    public FakeLogger<BatchWriter> WriterLog { get; } = new();

    public FakeLogger<FailurePublisher> MovesLog { get; } = new();

    /// <summary>Everything the handlers of the consumer logged (moves to the error queue, deferrals).</summary>
    public FakeLogCollector HandlerLogs { get; } = new();

    public MessagePublisher Publisher { get; private set; } = null!;

    /// <summary>The publisher's record of queues declared otherwise (a health check of the API's).</summary>
    public QueueMismatches PublisherMismatches { get; } = new(new FakeLogger<QueueMismatches>());

    /// <summary>The consumer's record of queues declared otherwise (one of its health checks).</summary>
    public QueueMismatches ConsumerMismatches { get; } = new(new FakeLogger<QueueMismatches>());

    /// <summary>The running consumer's outage watch (its health check: paused, or a type's batches held).</summary>
    public StoreOutage Outage => _outage ?? throw new InvalidOperationException("The consumer is not started.");

    /// <summary>The running consumer's pause switch (what it applies of the operators' state).</summary>
    public ConsumingSwitch Switch { get; private set; } = null!;

    public FakeLogger<ConsumerControlListener> ControlLog { get; } = new();

    /// <summary>The running consumer (its health check among others).</summary>
    public Consumer Consumer => _consumer ?? throw new InvalidOperationException("The consumer is not started.");

    public async Task StartPublisherAsync(TimeSpan? confirmTimeout = null)
    {
        await Envio.Messaging.Topology.DeclareAsync(stack.Broker, Names, default);
        Publisher = new MessagePublisher(stack.Broker, stack.Admin,
            Options.Create(new PublisherOptions { ConfirmTimeout = confirmTimeout ?? TimeSpan.FromSeconds(10) }), stack.Keys, new UnroutableTypes(), PublisherMismatches, PublisherLog);
    }

    /// <summary>Publishes orders (as the API would: serialized, sealed, confirmed) to the private topology.</summary>
    public Task PublishAsync(IEnumerable<(Envelope Envelope, Order Order)> messages, CancellationToken cancellationToken = default) =>
        Publisher.PublishAsync(Names, [.. messages.Select(m => (m.Envelope, Orders.Type.Serialize(m.Order)))], cancellationToken);

    /// <summary>
    /// Starts the consumer: by default on the tests' shared connection, with the stack's PostgreSQL store, one channel
    /// and no quick retries; <paramref name="options"/>, <paramref name="store"/> and <paramref name="connection"/>
    /// replace those (a connection of its own, for faults that must hit the consumer's connection only);
    /// <paramref name="moves"/> opens the connection failed messages are moved on, instead of the stack's factory;
    /// <paramref name="control"/> the one operators' commands are heard on.
    /// </summary>
    public async Task StartConsumerAsync(
        TimeSpan? batchWindow = null, ConsumerOptions? options = null, TestStore? store = null, IConnection? connection = null,
        IConnectionFactory? moves = null, IConnectionFactory? control = null)
    {
        if (store is null)
        {
            var connectionString = await stack.App.OwnerConnectionStringAsync();
            store = TestStore.Postgres(stack.Database, connectionString, stack.Keys, new ConsumerIdentity("observability-tests"));
        }
        var consumerOptions = options ?? new ConsumerOptions
        {
            Channels = 1,
            BatchWindow = batchWindow ?? TimeSpan.FromMilliseconds(20),
            QuickRetries = 0,
        };
        consumerOptions.Types = [Orders.Type.Name];
        _failures = moves is null
            ? stack.FailurePublisher(Topology, consumerOptions, MovesLog)
            : new FailurePublisher(moves, Options.Create(consumerOptions), MovesLog);
        var outage = _outage = StoreFailures.Outage(store, consumerOptions);
        var writer = new BatchWriter(_failures, outage, Options.Create(consumerOptions), WriterLog);
        var handlers = new BatchHandlers(TestStore.Maps, store.Writers, new MessageDecoder(stack.Keys), writer, _failures,
            Options.Create(Topology), Options.Create(consumerOptions), LoggerFactory.Create(logging => logging.AddProvider(new FakeLoggerProvider(HandlerLogs))));
        var consuming = connection ?? stack.Broker;
        Switch = new ConsumingSwitch(new FakeLogger<ConsumingSwitch>());
        _listener = new ConsumerControlListener(control ?? stack.BrokerFactory, Switch, Options.Create(Topology), Options.Create(consumerOptions), ControlLog);
        await _listener.StartAsync(default);
        // As in the service, nothing is consumed before the kept pause state was read: wait for it here, so that a
        // test's first look at the queue sees the consumer.
        await Switch.WaitUntilKnownAsync(default).WaitAsync(TimeSpan.FromSeconds(30));
        _consumer = new Consumer(consuming, handlers, _failures, Switch, outage, ConsumerMismatches, Options.Create(consumerOptions), ConsumerLog);
        await _consumer.StartAsync(default);
    }

    public static (Envelope, Order) Message(Order order, string? correlationId = null) => (Orders.Envelope(order, correlationId), order);

    /// <summary>Stops the consumer (what it holds unacknowledged goes back to its queue).</summary>
    public async Task DisposeConsumerAsync()
    {
        if (_consumer is not null)
        {
            await _consumer.StopAsync(default);
            _consumer.Dispose();
            _consumer = null;
        }
        if (_listener is not null)
        {
            await _listener.StopAsync(default);
            _listener.Dispose();
            _listener = null;
            Switch.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DisposeConsumerAsync();
        if (_failures is not null)
        {
            await _failures.DisposeAsync();
        }
        if (Publisher is not null)
        {
            await Publisher.DisposeAsync();
        }
        await using var channel = await stack.Broker.CreateChannelAsync();
        await Topologies.DeleteAsync(channel, Topology);
    }
}
