using Envio.ConsumerService.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>
/// A work queue that exists with other arguments than Envio declares is visible without stopping anything: the
/// consumer consumes it as it is, its <c>queues</c> health check says Degraded naming the queue and the difference,
/// and says Healthy again once the queue is declared as configured, with what waited stored. (A queue the broker
/// refuses outright, for permissions that predate the type, fails the sessions, and the consumer's own check names it.)
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class ConsumerHealthTests(EnvioStack stack)
{
    [Fact]
    public async Task A_work_queue_declared_otherwise_is_consumed_as_it_is_and_health_names_it_until_it_is_declared_anew()
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

        var degraded = await WaitForAsync(pipeline.ConsumerMismatches, HealthStatus.Degraded, ct);
        Assert.Contains($"'{names.Queue}'", degraded.Description, StringComparison.Ordinal);
        Assert.Contains("inequivalent arg", degraded.Description, StringComparison.Ordinal);
        Assert.Equal(HealthStatus.Healthy, (await pipeline.Consumer.CheckHealthAsync(new HealthCheckContext(), ct)).Status); // consuming

        // Deleted: the broker cancels the consumer, and the new session declares the queue as configured.
        await using (var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct))
        {
            await channel.QueueDeleteAsync(names.Queue, cancellationToken: ct);
        }
        await WaitForAsync(pipeline.ConsumerMismatches, HealthStatus.Healthy, ct);
        await pipeline.StartPublisherAsync();
        var order = SampleOrders.Create(93_001);
        await pipeline.PublishAsync([InProcessPipeline.Message(order)], ct);
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));
    }

    private static async Task<HealthCheckResult> WaitForAsync(IHealthCheck check, HealthStatus status, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var health = await check.CheckHealthAsync(new HealthCheckContext(), ct);
            if (health.Status == status)
            {
                return health;
            }
            Assert.True(DateTime.UtcNow < deadline, $"the health check stayed {health.Status} ({health.Description}), not {status}");
            await Task.Delay(100, ct);
        }
    }
}
