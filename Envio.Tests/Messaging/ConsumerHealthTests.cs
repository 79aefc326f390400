using Envio.ConsumerService.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>
/// A type whose queue the broker refuses (here: a work queue that exists with other arguments; on a deployed broker,
/// permissions that predate the type) is visible: the consumer's health says Degraded naming the queue and why, and
/// says Healthy again once a session starts, with what waited stored.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class ConsumerHealthTests(EnvioStack stack)
{
    [Fact]
    public async Task A_type_whose_queue_the_broker_refuses_makes_the_consumer_degraded_until_it_consumes_again()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pipeline = new InProcessPipeline(stack);
        var names = pipeline.Names;
        await using (var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct))
        {
            // The work queue as someone else declared it: classic, where Envio declares quorum (PRECONDITION_FAILED).
            await channel.QueueDeclareAsync(names.Queue, durable: true, exclusive: false, autoDelete: false,
                arguments: new Dictionary<string, object?> { ["x-queue-type"] = "classic" }, cancellationToken: ct);
        }
        await pipeline.StartConsumerAsync(options: new ConsumerOptions { Channels = 1, QuickRetries = 0, ResubscribeDelay = TimeSpan.FromMilliseconds(200) });

        var degraded = await WaitForAsync(pipeline, HealthStatus.Degraded, ct);
        Assert.Contains(names.Queue, degraded.Description, StringComparison.Ordinal);
        Assert.Contains("PRECONDITION_FAILED", degraded.Description, StringComparison.Ordinal);

        await using (var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct))
        {
            await channel.QueueDeleteAsync(names.Queue, cancellationToken: ct);
        }
        await WaitForAsync(pipeline, HealthStatus.Healthy, ct);
        await pipeline.StartPublisherAsync();
        var order = SampleOrders.Create(93_001);
        await pipeline.PublishAsync([InProcessPipeline.Message(order)], ct);
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));
    }

    private static async Task<HealthCheckResult> WaitForAsync(InProcessPipeline pipeline, HealthStatus status, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var health = await pipeline.Consumer.CheckHealthAsync(new HealthCheckContext(), ct);
            if (health.Status == status)
            {
                return health;
            }
            Assert.True(DateTime.UtcNow < deadline, $"the consumer's health stayed {health.Status} ({health.Description}), not {status}");
            await Task.Delay(100, ct);
        }
    }
}
