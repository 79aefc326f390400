using Envio.ApiService.Messaging;
using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Messaging;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.Tests.Observability;

/// <summary>
/// The real publisher and the real consumer (batches, writer, failure moves, PostgreSQL store) running inside the test
/// process, where their spans, measurements and logs can be captured, against the shared stack's broker and database.
/// The topology is private, so the stack's own consumers never take these messages.
/// </summary>
public sealed class InProcessPipeline(EnvioStack stack, TopologyOptions? topology = null) : IAsyncDisposable
{
    private OrderConsumer? _consumer;
    private FailurePublisher? _failures;

    public TopologyOptions Topology { get; } = topology ?? Topologies.Private();

    public FakeLogger<OrderPublisher> PublisherLog { get; } = new();

    public FakeLogger<OrderConsumer> ConsumerLog { get; } = new();

    public FakeLogger<BatchWriter> WriterLog { get; } = new();

    public FakeLogger<FailurePublisher> MovesLog { get; } = new();

    public OrderPublisher Publisher { get; private set; } = null!;

    public async Task StartPublisherAsync(TimeSpan? confirmTimeout = null)
    {
        await using (var channel = await stack.Broker.CreateChannelAsync())
        {
            await Envio.Contracts.Messaging.Topology.DeclareAsync(stack.Broker, Topology, default);
        }
        Publisher = new OrderPublisher(stack.Broker,
            Options.Create(new PublisherOptions { ConfirmTimeout = confirmTimeout ?? TimeSpan.FromSeconds(10) }),
            Options.Create(Topology), stack.Keys, PublisherLog);
    }

    /// <summary>
    /// Starts the consumer: by default on the tests' shared connection, with the stack's PostgreSQL store, one channel
    /// and no quick retries; <paramref name="options"/>, <paramref name="store"/> and <paramref name="connection"/>
    /// replace those (a connection of its own, for faults that must hit the consumer's connection only).
    /// </summary>
    public async Task StartConsumerAsync(
        TimeSpan? batchWindow = null, ConsumerOptions? options = null, IOrderStore? store = null, IConnection? connection = null)
    {
        if (store is null)
        {
            var connectionString = await stack.App.GetConnectionStringAsync("enviodb");
            store = new PostgresOrderStore(stack.Database, new StoreSettings(StoreEngine.Postgres, connectionString!),
                new ConsumerIdentity("observability-tests"), stack.Keys, new FakeLogger<PostgresOrderStore>());
        }
        var consumerOptions = Options.Create(options ?? new ConsumerOptions
        {
            Channels = 1,
            BatchWindow = batchWindow ?? TimeSpan.FromMilliseconds(20),
            QuickRetries = 0,
        });
        _failures = stack.FailurePublisher(Topology, consumerOptions.Value, MovesLog);
        var writer = new BatchWriter(store, _failures, StoreFailures.Outage(store, consumerOptions.Value), consumerOptions, WriterLog);
        var consuming = connection ?? stack.Broker;
        _consumer = new OrderConsumer(consuming, new OrderDecoder(stack.Keys), writer, _failures,
            new ConsumingSwitch(consuming, Options.Create(Topology), new FakeLogger<ConsumingSwitch>()), consumerOptions, Options.Create(Topology), ConsumerLog);
        await _consumer.StartAsync(default);
    }

    public static (Envelope, Order) Message(Order order, string? correlationId = null) =>
        (new Envelope(order.OrderId, WireFormat.OrderType, WireFormat.OrderSchemaVersion, DateTimeOffset.UtcNow, correlationId), order);

    public async ValueTask DisposeAsync()
    {
        if (_consumer is not null)
        {
            await _consumer.StopAsync(default);
            _consumer.Dispose();
        }
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
