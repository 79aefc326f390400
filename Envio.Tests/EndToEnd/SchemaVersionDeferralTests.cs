using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Tests.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using RabbitMQ.Client;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// During a rolling update the producer may be ahead of a consumer: a message of a newer schema version than the
/// consumer knows is deferred (back through the first retry queue, its attempts unspent), counted and logged, and
/// comes round again for a consumer that knows it; it never reaches the error queue. (Invariant 24.)
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class SchemaVersionDeferralTests(EnvioStack stack)
{
    [Fact]
    public async Task A_message_of_a_newer_schema_version_is_deferred_with_its_attempts_unspent_and_comes_round_again()
    {
        var ct = TestContext.Current.CancellationToken;
        using var deferred = new MetricCollector<long>(null, ConsumerTelemetry.Name, "envio.consumer.deferred");
        await using var pipeline = new InProcessPipeline(stack, Topologies.Private(TimeSpan.FromSeconds(1)));
        await pipeline.StartPublisherAsync();
        var order = SampleOrders.Create(91_001);
        var newer = Orders.Envelope(order, "deferral-test") with { SchemaVersion = Orders.Type.SchemaVersion + 1 };
        var good = SampleOrders.Create(91_002);

        await pipeline.PublishAsync([(newer, order), InProcessPipeline.Message(good)], ct);
        await pipeline.StartConsumerAsync();

        // The good order of the same batch is stored; the newer one comes back to the work queue again and again.
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [good.OrderId], TimeSpan.FromSeconds(60)));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (deferred.GetMeasurementSnapshot().Sum(m => m.Value) < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, ct);
        }
        Assert.True(deferred.GetMeasurementSnapshot().Sum(m => m.Value) >= 3, "the newer message was not deferred again and again");
        Assert.All(deferred.GetMeasurementSnapshot(), m => Assert.Equal("order", m.Tags[MessagingTelemetry.DataObjectType]));
        Assert.Contains(pipeline.HandlerLogs.GetSnapshot(), r => r.Message.Contains($"Message {order.OrderId} deferred", StringComparison.Ordinal));

        await pipeline.DisposeConsumerAsync();
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        var names = pipeline.Names;
        Assert.Equal(0u, (await channel.QueueDeclarePassiveAsync(names.ErrorQueue, ct)).MessageCount);
        // Wherever it is now (the work queue or waiting its delay), it is the same message, its attempts never spent.
        BasicGetResult? found = null;
        for (var i = 0; i < 30 && found is null; i++)
        {
            found = await channel.BasicGetAsync(names.Queue, autoAck: true, ct) ?? await channel.BasicGetAsync(names.RetryQueues.First(), autoAck: true, ct);
            if (found is null)
            {
                await Task.Delay(100, ct);
            }
        }
        Assert.NotNull(found);
        Assert.Equal(order.OrderId.ToString(), found.BasicProperties.MessageId);
        Assert.Equal(0, FailurePublisher.AttemptsOf(found.BasicProperties));
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", [order.OrderId]));
    }
}
