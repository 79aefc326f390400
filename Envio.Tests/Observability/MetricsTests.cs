using Envio.ApiService.Messaging;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Messaging;
using Envio.Tests.Support;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.Tests.Observability;

/// <summary>
/// The instruments move on a real publish and consume. The meters are process-wide: measurements are picked by the
/// private topology's names where the instrument carries them, and counted as "at least" where it does not.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class MetricsTests(EnvioStack stack)
{
    [Fact]
    public async Task Publishing_and_consuming_orders_moves_the_publisher_and_consumer_instruments()
    {
        var ct = TestContext.Current.CancellationToken;
        using var sent = new MetricCollector<long>(null, PublisherTelemetry.Name, "messaging.client.sent.messages");
        using var confirmed = new MetricCollector<long>(null, PublisherTelemetry.Name, "envio.publisher.confirmed");
        using var publishDuration = new MetricCollector<double>(null, PublisherTelemetry.Name, "messaging.client.operation.duration");
        using var consumed = new MetricCollector<long>(null, ConsumerTelemetry.Name, "messaging.client.consumed.messages");
        using var batchSize = new MetricCollector<int>(null, ConsumerTelemetry.Name, "envio.consumer.batch.size");
        using var processDuration = new MetricCollector<double>(null, ConsumerTelemetry.Name, "messaging.process.duration");
        using var insertDuration = new MetricCollector<double>(null, ConsumerTelemetry.Name, "envio.consumer.insert.duration");
        using var endToEnd = new MetricCollector<double>(null, ConsumerTelemetry.Name, "envio.order.end_to_end.duration");
        using var deadLettered = new MetricCollector<long>(null, ConsumerTelemetry.Name, "envio.consumer.dead_lettered");
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync();
        var orders = Enumerable.Range(0, 3).Select(i => SampleOrders.Create(71_000 + i)).ToList();

        await pipeline.PublishAsync(orders.Select(o => InProcessPipeline.Message(o)).ToList(), ct);
        await PublishPoisonAsync(pipeline.Topology);
        await pipeline.StartConsumerAsync();
        Assert.Equal(3, await StoredOrders.WaitForAsync(stack.Database, orders.Select(o => o.OrderId).ToList(), TimeSpan.FromSeconds(60)));
        await WaitUntilAsync(() => Sum(consumed, pipeline.Topology.Queue) >= 4 && deadLettered.GetMeasurementSnapshot().Count > 0
            && Of(processDuration, pipeline.Topology.Queue).Count > 0);

        Assert.Equal(3, Sum(sent, pipeline.Topology.Exchange));
        Assert.All(Of(sent, pipeline.Topology.Exchange), m => Assert.False(m.Tags.ContainsKey("error.type")));
        Assert.Equal(3, Sum(confirmed, pipeline.Topology.Exchange));
        Assert.Equal(3, Of(publishDuration, pipeline.Topology.Exchange).Count);
        Assert.Equal(4, Sum(consumed, pipeline.Topology.Queue));
        Assert.Equal(4, Of(batchSize, pipeline.Topology.Queue).Sum(m => m.Value));
        Assert.NotEmpty(insertDuration.GetMeasurementSnapshot());
        Assert.Equal(3, endToEnd.GetMeasurementSnapshot().Count); // untagged, but only this collection's tests write, one at a time
        Assert.All(endToEnd.GetMeasurementSnapshot(), m => Assert.InRange(m.Value, 0, 600));
        Assert.Contains(deadLettered.GetMeasurementSnapshot(), m => Equals(m.Tags["error.type"], "invalid"));

        // Every measurement names its type, and only ever a registered one: the poison's foreign type ("envio.unknown",
        // a word a producer wrote) makes no series of its own; it counts where it was found, under the order.
        foreach (var tags in Of(sent, pipeline.Topology.Exchange).Select(m => m.Tags)
            .Concat(Of(consumed, pipeline.Topology.Queue).Select(m => m.Tags))
            .Concat(Of(processDuration, pipeline.Topology.Queue).Select(m => m.Tags))
            .Concat(endToEnd.GetMeasurementSnapshot().Select(m => m.Tags))
            .Concat(deadLettered.GetMeasurementSnapshot().Select(m => m.Tags)))
        {
            Assert.Equal("order", tags.GetValueOrDefault(MessagingTelemetry.DataObjectType));
        }
    }

    [Fact]
    public async Task A_message_the_broker_refuses_counts_as_sent_with_its_error_and_as_nacked()
    {
        var ct = TestContext.Current.CancellationToken;
        using var sent = new MetricCollector<long>(null, PublisherTelemetry.Name, "messaging.client.sent.messages");
        using var nacked = new MetricCollector<long>(null, PublisherTelemetry.Name, "envio.publisher.nacked");
        await using var pipeline = new InProcessPipeline(stack);
        pipeline.Topology.MaxLength = 1; // a full queue nacks what comes next
        await pipeline.StartPublisherAsync();

        // A quorum queue notices that it is over its bound a moment late: it may take one more before it refuses.
        var published = 0;
        PublishFailedException? refusal = null;
        for (var i = 0; refusal is null && i < 5; i++)
        {
            published++;
            refusal = await Record.ExceptionAsync(() =>
                pipeline.PublishAsync([InProcessPipeline.Message(SampleOrders.Create(71_100 + i))], ct)) as PublishFailedException;
        }

        Assert.NotNull(refusal);
        Assert.Equal(published, Sum(sent, pipeline.Topology.Exchange));
        Assert.Single(Of(sent, pipeline.Topology.Exchange), m => Equals(m.Tags.GetValueOrDefault("error.type"), "nacked"));
        Assert.Equal(1, Sum(nacked, pipeline.Topology.Exchange));
    }

    [Fact]
    public async Task Messages_postponed_after_a_transient_failure_count_as_retried()
    {
        var ct = TestContext.Current.CancellationToken;
        using var retried = new MetricCollector<long>(null, ConsumerTelemetry.Name, "envio.consumer.retried");
        var topology = Topologies.Private();
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct);
        try
        {
            var database = (await stack.App.OwnerConnectionStringAsync(ct));
            await using var waitsBriefly = StoreFailures.WaitingBriefly(database);
            await using var failures = stack.FailurePublisher(topology);
            var store = StoreFailures.Store(waitsBriefly, stack.Keys, "metrics-tests");
            var writer = new BatchWriter(failures, StoreFailures.Outage(store), Options.Create(new ConsumerOptions { QuickRetries = 0 }), NullLogger<BatchWriter>.Instance);
            var orders = new[] { SampleOrders.Create(71_200), SampleOrders.Create(71_201) };

            await using (await StoreFailures.LockOrdersAsync(database))
            {
                await writer.WriteOrdersAsync(store, topology, orders.Select(o => (LogTests.Deliver(o, "metrics"), Orders.Received(o, "metrics"))).ToList(), ct);
            }

            Assert.Equal(2, retried.GetMeasurementSnapshot().Sum(m => m.Value));
            Assert.Equal(2u, (await channel.QueueDeclarePassiveAsync(topology.RetryQueue(topology.EffectiveRetryDelays[0]), ct)).MessageCount);
        }
        finally
        {
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    [Fact]
    public async Task Orders_written_again_count_as_already_stored()
    {
        var ct = TestContext.Current.CancellationToken;
        using var alreadyStored = new MetricCollector<long>(null, ConsumerTelemetry.Name, "envio.consumer.orders.already_stored");
        var topology = Topologies.Private();
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct);
        try
        {
            await using var failures = stack.FailurePublisher(topology);
            var store = StoreFailures.Store(stack.Database, stack.Keys, "metrics-tests");
            var writer = new BatchWriter(failures, StoreFailures.Outage(store), Options.Create(new ConsumerOptions()), NullLogger<BatchWriter>.Instance);
            var orders = new[] { SampleOrders.Create(71_400), SampleOrders.Create(71_401) };
            List<(Delivery, ConsumerService.Persistence.Mapping.Received<Order>)> Batch(params Order[] of) =>
                [.. of.Select(o => (LogTests.Deliver(o, "metrics"), Orders.Received(o, "metrics")))];

            await writer.WriteOrdersAsync(store, topology, Batch(orders), ct);
            Assert.Empty(alreadyStored.GetMeasurementSnapshot());

            await writer.WriteOrdersAsync(store, topology, Batch([.. orders, SampleOrders.Create(71_402)]), ct); // a redelivery of two, and one new

            Assert.Equal(2, alreadyStored.GetMeasurementSnapshot().Sum(m => m.Value));
        }
        finally
        {
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    [Fact]
    public async Task The_queue_depth_gauge_reports_the_messages_waiting_in_each_queue()
    {
        var ct = TestContext.Current.CancellationToken;
        using var depth = new MetricCollector<long>(null, ConsumerTelemetry.Name, "envio.queue.depth");
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync();
        await pipeline.PublishAsync(
            Enumerable.Range(0, 5).Select(i => InProcessPipeline.Message(SampleOrders.Create(71_300 + i))).ToList(), ct);
        using var monitor = new QueueDepthMonitor(stack.Broker, Options.Create(pipeline.Topology), NullLogger<QueueDepthMonitor>.Instance);

        await monitor.SampleAsync(ct);
        depth.RecordObservableInstruments();

        var sample = depth.GetMeasurementSnapshot().Where(m => Equals(m.Tags["messaging.destination.name"], pipeline.Topology.Queue)).ToList();
        Assert.Equal(5, sample.Last().Value);
        Assert.Contains(depth.GetMeasurementSnapshot(), m => Equals(m.Tags["messaging.destination.name"], pipeline.Topology.ErrorQueue) && m.Value == 0);
        await monitor.StopAsync(ct);
    }

    private async Task PublishPoisonAsync(TopologyOptions topology)
    {
        await using var channel = await stack.Broker.CreateChannelAsync(new CreateChannelOptions(true, true));
        var properties = new Envelope(Guid.CreateVersion7(), "envio.unknown", 1, DateTimeOffset.UtcNow, "poison").ToProperties(WireFormat.ContentType);
        await channel.BasicPublishAsync(topology.Exchange, topology.RoutingKey, mandatory: true, properties, "{}"u8.ToArray());
    }

    private static List<CollectedMeasurement<T>> Of<T>(MetricCollector<T> collector, string destination) where T : struct =>
        collector.GetMeasurementSnapshot().Where(m => Equals(m.Tags.GetValueOrDefault("messaging.destination.name"), destination)).ToList();

    private static long Sum(MetricCollector<long> collector, string destination) => Of(collector, destination).Sum(m => m.Value);

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "The instruments did not move within 30 s.");
            await Task.Delay(50);
        }
    }
}
