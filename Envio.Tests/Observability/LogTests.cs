using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Envio.Tests.Messaging;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.Tests.Observability;

/// <summary>
/// Failure logs name the message and the request it came from (structured MessageId and CorrelationId), so an
/// operator can follow one order; they never carry the order's content (names, emails, documents).
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class LogTests(EnvioStack stack)
{
    [Fact]
    public async Task A_message_moved_to_the_error_queue_is_logged_with_its_ids_and_without_its_content()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync();
        var order = SampleOrders.Create(72_000) with { Total = 0.01m }; // the total does not add up: invalid
        // Encrypted as the API would, so the consumer opens it and refuses it for what it says, with its data in hand.
        var envelope = new Envelope(order.OrderId, Orders.Type.WireType, Orders.Type.SchemaVersion, DateTimeOffset.UtcNow, "corr-72000");
        await using (var channel = await stack.Broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct))
        {
            await channel.BasicPublishAsync(pipeline.Topology.Exchange, pipeline.Topology.RoutingKey, mandatory: true,
                EncryptedBody.Properties(envelope), EncryptedBody.Seal(stack.Keys, envelope, Orders.Type.Serialize(order)), ct);
        }

        await pipeline.StartConsumerAsync();
        var record = await WaitForAsync(pipeline.HandlerLogs, r => r.GetStructuredStateValue("MessageId") == order.OrderId.ToString());

        Assert.Equal(LogLevel.Warning, record.Level);
        Assert.Equal("corr-72000", record.GetStructuredStateValue("CorrelationId"));
        AssertNoPersonalData(pipeline.HandlerLogs, order);
        AssertNoPersonalData(pipeline.ConsumerLog.Collector, order);

        // And it is in the error queue, as the log says (the pipeline's own: nobody else takes from it).
        var moved = await TakeFromAsync(pipeline.Topology.ErrorQueue, order.OrderId, ct);
        Assert.Equal("corr-72000", moved.BasicProperties.CorrelationId);
        Assert.True(moved.BasicProperties.Headers?.ContainsKey(FailureHeaders.Reason), "the error queue's message carries no reason");
    }

    private async Task<BasicGetResult> TakeFromAsync(string queue, Guid messageId, CancellationToken ct)
    {
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (await channel.BasicGetAsync(queue, autoAck: true, ct) is { } message && message.BasicProperties.MessageId == messageId.ToString())
            {
                return message;
            }
            Assert.True(DateTime.UtcNow < deadline, $"{messageId} is not in {queue}");
            await Task.Delay(100, ct);
        }
    }

    [Fact]
    public async Task A_publish_the_broker_does_not_confirm_is_logged_with_the_ids_of_the_request()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync(confirmTimeout: TimeSpan.FromTicks(1));
        var order = SampleOrders.Create(72_100);

        await Assert.ThrowsAsync<ApiService.Messaging.PublishFailedException>(() =>
            pipeline.PublishAsync([InProcessPipeline.Message(order, "corr-72100")], ct));

        var record = Assert.Single(pipeline.PublisherLog.Collector.GetSnapshot());
        Assert.Equal(order.OrderId.ToString(), record.GetStructuredStateValue("MessageId"));
        Assert.Equal("corr-72100", record.GetStructuredStateValue("CorrelationId"));
        AssertNoPersonalData(pipeline.PublisherLog.Collector, order);
    }

    [Fact]
    public async Task A_message_that_runs_out_of_retries_is_logged_with_its_ids()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct);
        try
        {
            var database = (await stack.App.OwnerConnectionStringAsync(ct));
            await using var waitsBriefly = StoreFailures.WaitingBriefly(database);
            await using var failures = stack.FailurePublisher(topology);
            var log = new FakeLogger<BatchWriter>();
            var store = StoreFailures.Store(waitsBriefly, stack.Keys, "log-tests");
            var writer = new BatchWriter(failures, StoreFailures.Outage(store), Options.Create(new ConsumerOptions { QuickRetries = 0 }), log);
            var order = SampleOrders.Create(72_200);

            await using (await StoreFailures.LockOrdersAsync(database))
            {
                await writer.WriteOrdersAsync(store, topology, [(Deliver(order, "corr-72200", attempts: topology.EffectiveRetryDelays.Count), Orders.Received(order, "corr-72200"))], ct);
            }

            var record = Assert.Single(log.Collector.GetSnapshot(), r => r.GetStructuredStateValue("MessageId") == order.OrderId.ToString());
            Assert.Equal(LogLevel.Warning, record.Level);
            Assert.Equal("corr-72200", record.GetStructuredStateValue("CorrelationId"));
            AssertNoPersonalData(log.Collector, order);
        }
        finally
        {
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    /// <summary>A delivery as the consumer makes it, carrying an order with its correlation id.</summary>
    public static Delivery Deliver(Order order, string correlationId, int attempts = 0)
    {
        var properties = Orders.Envelope(order, correlationId).ToProperties(WireFormat.ContentType);
        if (attempts > 0)
        {
            properties.Headers![FailureHeaders.Attempts] = attempts;
        }
        return new Delivery(1, 0, properties, Orders.Type.Serialize(order), Redelivered: false);
    }

    private static void AssertNoPersonalData(FakeLogCollector collector, Order order)
    {
        foreach (var record in collector.GetSnapshot())
        {
            var text = record.Message + " " + string.Join(" ", record.StructuredState?.Select(s => s.Value) ?? []) + " " + record.Exception;
            Assert.DoesNotContain(order.Customer!.Email!, text, StringComparison.Ordinal);
            Assert.DoesNotContain(order.Customer.Document!, text, StringComparison.Ordinal);
            Assert.DoesNotContain(order.Customer.Name!, text, StringComparison.Ordinal);
        }
    }

    private static Task<FakeLogRecord> WaitForAsync<T>(FakeLogger<T> logger, Func<FakeLogRecord, bool> match) => WaitForAsync(logger.Collector, match);

    private static async Task<FakeLogRecord> WaitForAsync(FakeLogCollector logs, Func<FakeLogRecord, bool> match)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (logs.GetSnapshot().FirstOrDefault(match) is { } record)
            {
                return record;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("No such log record.");
    }
}
