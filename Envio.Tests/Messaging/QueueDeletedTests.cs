using Envio.Messaging;
using Envio.ApiService.Messaging;
using Envio.ConsumerService.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>
/// A work queue deleted (or re-created) under running services, as an operator's <c>rabbitmqctl delete_queue</c> does,
/// and as RabbitMQ 4.x's consumer timeout does to a consumer (basic.cancel, channel kept open): the consumer starts a
/// new session that declares the queue again, and the API declares it again after its publish came back unroutable,
/// saying so in its health meanwhile. Nothing stays idle, nothing stays refused. (Invariant 19.)
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class QueueDeletedTests(EnvioStack stack)
{
    [Fact]
    public async Task A_consumer_whose_queue_is_deleted_hears_the_broker_cancel_it_and_consumes_again_from_the_queue_it_declares_anew()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pipeline = new InProcessPipeline(stack);
        // No idle renewal within the test: only the broker's basic.cancel can bring the sessions back.
        await pipeline.StartConsumerAsync(options: Consuming(idleRenewal: TimeSpan.FromHours(1)));
        await WaitForConsumersAsync(pipeline.Names.Queue, 2, ct);

        await DeleteQueueAsync(pipeline.Names.Queue, ct);

        await WaitForConsumersAsync(pipeline.Names.Queue, 2, ct); // the new sessions declared it again
        Assert.Contains(pipeline.ConsumerLog.Collector.GetSnapshot(),
            r => r.Exception?.Message.Contains("cancelled the consumer", StringComparison.Ordinal) ?? false);
        await pipeline.StartPublisherAsync();
        var order = SampleOrders.Create(94_001);
        await pipeline.PublishAsync([InProcessPipeline.Message(order)], ct);
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(30)));
        Assert.Equal(HealthStatus.Healthy, (await pipeline.Consumer.CheckHealthAsync(new HealthCheckContext(), ct)).Status);
    }

    /// <summary>
    /// A queue deleted and declared again at once, as the API's next publish does: RabbitMQ 3.10 then sometimes drops
    /// the consumers without a basic.cancel (seen here), and the new queue has none. Five rounds make that likely; an
    /// idle session renews its consumer, so whatever the broker did, the order is stored.
    /// </summary>
    [Fact]
    public async Task A_queue_deleted_and_declared_again_at_once_is_consumed_again_whether_or_not_the_broker_said_so()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartConsumerAsync(options: Consuming(idleRenewal: TimeSpan.FromSeconds(2)));
        await WaitForConsumersAsync(pipeline.Names.Queue, 2, ct);

        for (var round = 0; round < 5; round++)
        {
            await DeleteQueueAsync(pipeline.Names.Queue, ct);
            await Envio.Messaging.Topology.DeclareAsync(stack.Broker, pipeline.Names, ct);
        }
        await pipeline.StartPublisherAsync();
        var order = SampleOrders.Create(94_011);
        await pipeline.PublishAsync([InProcessPipeline.Message(order)], ct);

        var stored = await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(30));
        Assert.True(stored == 1, "Not stored; the consumer logged: " +
            string.Join(" | ", pipeline.ConsumerLog.Collector.GetSnapshot().Select(r => $"{r.Message} {r.Exception?.Message}")));
        await WaitForConsumersAsync(pipeline.Names.Queue, 2, ct);
    }

    [Fact]
    public async Task A_publish_returned_because_the_queue_is_gone_declares_it_again_for_the_next_request_and_health_says_so_meanwhile()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        // One channel, opened by the first publish, as the API's are once all are open: a newly opened channel would
        // declare the type's names again by itself.
        var unroutable = new UnroutableTypes();
        await using var publisher = new MessagePublisher(
            stack.Broker, stack.Admin, Options.Create(new PublisherOptions { Channels = 1 }), stack.Keys, unroutable, new QueueMismatches(NullLogger<QueueMismatches>.Instance), NullLogger<MessagePublisher>.Instance);
        try
        {
            await publisher.PublishOrdersAsync(topology, [InProcessPipeline.Message(SampleOrders.Create(94_101))], ct);
            await using (var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct))
            {
                await channel.QueueDeleteAsync(topology.Queue, cancellationToken: ct);
            }

            var returned = await Assert.ThrowsAsync<PublishFailedException>(() =>
                publisher.PublishOrdersAsync(topology, [InProcessPipeline.Message(SampleOrders.Create(94_102))], ct));
            Assert.Contains("could not route", returned.Message, StringComparison.Ordinal);
            var health = await unroutable.CheckHealthAsync(new HealthCheckContext(), ct);
            Assert.Equal(HealthStatus.Degraded, health.Status);
            Assert.Contains(topology.Queue, health.Description, StringComparison.Ordinal);

            await publisher.PublishOrdersAsync(topology, [InProcessPipeline.Message(SampleOrders.Create(94_103))], ct);
            Assert.Equal(HealthStatus.Healthy, (await unroutable.CheckHealthAsync(new HealthCheckContext(), ct)).Status);
            Assert.Equal(1u, await stack.ReadyInPrivateQueueAsync(topology.Queue, ct));
        }
        finally
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    private static ConsumerOptions Consuming(TimeSpan idleRenewal) => new()
    {
        Channels = 2, QuickRetries = 0, ResubscribeDelay = TimeSpan.FromMilliseconds(200), IdleRenewal = idleRenewal,
    };

    private async Task DeleteQueueAsync(string queue, CancellationToken ct)
    {
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        await channel.QueueDeleteAsync(queue, cancellationToken: ct);
    }

    private async Task WaitForConsumersAsync(string queue, uint consumers, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            try
            {
                if ((await channel.QueueDeclarePassiveAsync(queue, ct)).ConsumerCount >= consumers)
                {
                    return;
                }
            }
            catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
            {
                // Not declared again yet.
            }
            Assert.True(DateTime.UtcNow < deadline, $"{queue} did not get {consumers} consumers");
            await Task.Delay(100, ct);
        }
    }
}
