using System.Text;
using Envio.ApiService.Messaging;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Tests.Support;
using Envio.Tests.Observability;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>The topology as the real broker applies it: shared declarations, and the safety net for poison.</summary>
[Collection(AppHostTests.Name)]
public sealed class TopologyTests(EnvioStack stack)
{
    [Fact]
    public async Task Declaring_twice_from_the_same_definition_is_harmless()
    {
        var topology = Topologies.Private();
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: TestContext.Current.CancellationToken);
        try
        {
            await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), TestContext.Current.CancellationToken);
            await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), TestContext.Current.CancellationToken);
            Assert.True(channel.IsOpen);
        }
        finally
        {
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    /// <summary>A setting changed since the queues were created (or two versions of a rolling deploy that disagree).</summary>
    [Fact]
    public async Task A_queue_declared_with_other_arguments_is_used_as_it_is_and_the_difference_is_said()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        topology.MaxLength = 1_000;
        await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct);
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        try
        {
            topology.MaxLength = 5_000;
            var declaration = await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct);

            var mismatch = Assert.Single(declaration.Mismatches);
            Assert.Equal(topology.Queue, mismatch.Queue);
            Assert.Contains("x-max-length", mismatch.Description, StringComparison.Ordinal);
            Assert.Contains("It is used as it is", mismatch.Description, StringComparison.Ordinal);
            Assert.Contains($"rabbitmqctl set_policy --vhost <vhost> --apply-to queues {topology.Queue} ", mismatch.Description, StringComparison.Ordinal);

            topology.MaxLength = 1_000; // the setting put back
            Assert.Empty((await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct)).Mismatches);
        }
        finally
        {
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    /// <summary>
    /// The arguments a mismatch is most costly in (invariant 12): where failures go (the dead-letter exchange), the
    /// queue's type, and its delivery limit. Each queue that differs is used as it is and named with the argument the
    /// broker refused, the others are not named, and the declaring connection stays open for the service's work.
    /// </summary>
    [Theory]
    [InlineData("x-dead-letter-exchange")]
    [InlineData("x-queue-type")]
    [InlineData("x-delivery-limit")]
    public async Task A_queue_declared_with_another_dead_letter_exchange_type_or_delivery_limit_is_used_as_it_is_and_named(string argument)
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        var before = new TopologyOptions // the same names, as the other definition (an earlier deployment) had them
        {
            Exchange = topology.Exchange, Queue = topology.Queue, ErrorExchange = topology.ErrorExchange, ErrorQueue = topology.ErrorQueue,
            RetryExchange = topology.RetryExchange, ControlExchange = topology.ControlExchange,
        };
        switch (argument)
        {
            case "x-dead-letter-exchange": // the work queue dead-letters elsewhere; the error queue is the same queue
                before.ErrorExchange = topology.ErrorExchange + ".before";
                break;
            case "x-queue-type":
                before.QueueType = "classic";
                break;
            default:
                before.DeliveryLimit = topology.DeliveryLimit + 5;
                break;
        }
        await Topology.DeclareAsync(stack.Broker, Orders.Names(before), ct);
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        try
        {
            var declaration = await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct);

            // A classic queue differs from a quorum one in every queue; the others only in the work queue.
            var differing = argument == "x-queue-type" ? Orders.Names(topology).AllQueues.Order().ToList() : [topology.Queue];
            Assert.Equal(differing, declaration.Mismatches.Select(m => m.Queue).Order().ToList());
            Assert.All(declaration.Mismatches, mismatch =>
            {
                Assert.Contains($"'{mismatch.Queue}'", mismatch.Description, StringComparison.Ordinal);
                Assert.Contains("It is used as it is", mismatch.Description, StringComparison.Ordinal);
            });
            // The broker names the first argument it finds different: for another type, one of the arguments only a
            // quorum queue has (RabbitMQ 3.10 names x-overflow), so there only the queues are asserted.
            var workQueue = declaration.Mismatches.Single(m => m.Queue == topology.Queue).Description;
            Assert.True(argument == "x-queue-type" || workQueue.Contains(argument, StringComparison.Ordinal), workQueue);
            Assert.True(stack.Broker.IsOpen);
            Assert.Equal(0u, (await channel.QueueDeclarePassiveAsync(topology.Queue, ct)).MessageCount);
        }
        finally
        {
            await Topologies.DeleteAsync(channel, topology);
            await channel.ExchangeDeleteAsync(before.ErrorExchange, cancellationToken: CancellationToken.None);
        }
    }

    /// <summary>
    /// Before, every declaration failed with PRECONDITION_FAILED: every POST was a 503 and the consumer started over
    /// every 2 s. Now orders are accepted and stored through the queue as it is, and both services' health names it.
    /// </summary>
    [Fact]
    public async Task With_a_queue_declared_otherwise_orders_are_accepted_and_stored_and_both_services_say_Degraded()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        topology.MaxLength = 1_000;
        await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct); // as the deployment before declared it
        topology.MaxLength = 5_000;
        await using var pipeline = new InProcessPipeline(stack, topology);
        await pipeline.StartPublisherAsync();
        var orders = Enumerable.Range(0, 20).Select(i => SampleOrders.Create(95_300 + i)).ToList();

        await pipeline.PublishAsync([.. orders.Select(o => InProcessPipeline.Message(o))], ct);
        await pipeline.StartConsumerAsync();

        Assert.Equal(orders.Count, await StoredOrders.WaitForAsync(stack.Database, [.. orders.Select(o => o.OrderId)], TimeSpan.FromSeconds(30)));
        foreach (var service in new[] { pipeline.PublisherMismatches, pipeline.ConsumerMismatches })
        {
            var health = await service.CheckHealthAsync(new HealthCheckContext(), ct);
            Assert.Equal(HealthStatus.Degraded, health.Status);
            Assert.Contains($"'{topology.Queue}'", health.Description, StringComparison.Ordinal);
            Assert.Contains("x-max-length", health.Description, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_message_redelivered_past_the_delivery_limit_is_dead_lettered_to_the_error_queue()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        topology.DeliveryLimit = 2;
        await using var channel = await stack.Broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct);
        await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct);
        try
        {
            var id = Guid.CreateVersion7().ToString();
            await channel.BasicPublishAsync(topology.Exchange, topology.RoutingKey, true, new BasicProperties { MessageId = id, Persistent = true },
                Encoding.UTF8.GetBytes("crashes its consumer"), ct);

            // A consumer that dies on it again and again: every delivery is returned unacknowledged.
            for (var delivery = 0; delivery <= topology.DeliveryLimit; delivery++)
            {
                var message = await WaitForAsync(channel, topology.Queue, ct);
                await channel.BasicRejectAsync(message.DeliveryTag, requeue: true, ct);
            }

            var dead = await WaitForAsync(channel, topology.ErrorQueue, ct);
            Assert.Equal(id, dead.BasicProperties.MessageId);
            Assert.True(dead.BasicProperties.Headers?.ContainsKey("x-death"));
            Assert.Null(await channel.BasicGetAsync(topology.Queue, autoAck: true, ct));
        }
        finally
        {
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    [Theory]
    [InlineData("3.10.8", false)]
    [InlineData("3.13.7", false)]
    [InlineData("4.0.5", true)]
    [InlineData("4.3.0", true)]
    [InlineData("4.1.0-rc.1", true)]
    public void The_error_queue_turns_the_delivery_limit_off_only_on_brokers_that_have_one_by_default(string version, bool turnedOff)
    {
        var broker = BrokerVersion.Parse(version);
        var quorum = Topology.ErrorQueueArguments(new TopologyOptions(), broker);
        Assert.Equal(turnedOff, quorum.TryGetValue("x-delivery-limit", out var limit));
        if (turnedOff)
        {
            Assert.Equal(-1, limit);
        }
        Assert.False(Topology.ErrorQueueArguments(new TopologyOptions { QueueType = "classic" }, broker).ContainsKey("x-delivery-limit"));
        Assert.DoesNotContain(quorum.Keys, key => key is "x-message-ttl" or "x-max-length" or "x-max-length-bytes" or "x-expires");
    }

    /// <summary>Why the error queue does not declare -1 on RabbitMQ 3.x: there it drops a message at its first return.</summary>
    [Fact]
    public async Task On_RabbitMQ_3_a_delivery_limit_of_minus_one_would_drop_a_message_at_its_first_return()
    {
        var ct = TestContext.Current.CancellationToken;
        Assert.SkipWhen(BrokerVersion.Of(stack.Broker).HasDefaultDeliveryLimit, "RabbitMQ 4.x reads -1 as no limit.");
        var queue = $"envio.orders.test.{Guid.NewGuid():N}";
        await using var channel = await stack.Broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum", ["x-delivery-limit"] = -1 }, cancellationToken: ct);
        await channel.ExchangeDeclareAsync(queue, ExchangeType.Fanout, durable: false, autoDelete: false, cancellationToken: ct);
        await channel.QueueBindAsync(queue, queue, "", cancellationToken: ct);
        try
        {
            await channel.BasicPublishAsync(queue, "", true, new BasicProperties { Persistent = true }, Encoding.UTF8.GetBytes("kept?"), ct);
            var message = await WaitForAsync(channel, queue, ct);
            await channel.BasicNackAsync(message.DeliveryTag, multiple: false, requeue: true, ct);
            await Task.Delay(500, ct);
            Assert.Equal(0u, (await channel.QueueDeclarePassiveAsync(queue, ct)).MessageCount);
        }
        finally
        {
            await channel.QueueDeleteAsync(queue, cancellationToken: ct);
            await channel.ExchangeDeleteAsync(queue, cancellationToken: ct);
        }
    }

    /// <summary>
    /// An operator looks at the error queue again and again, and replays some of it by id: every other message stays,
    /// with the headers that say why it failed. (On RabbitMQ 4.0–4.2 each look would count against a delivery limit
    /// of 20 if the error queue had one; it does not, see the theory above.)
    /// </summary>
    [Fact]
    public async Task Fifty_listings_and_fifty_partial_replays_leave_every_other_message_in_the_error_queue_with_its_headers()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        await Topology.DeclareAsync(stack.Broker, Orders.Names(topology), ct);
        try
        {
            await using var failures = stack.FailurePublisher(topology);
            var kept = Enumerable.Range(0, 5).Select(_ => Guid.CreateVersion7().ToString()).ToList();
            var replayed = Enumerable.Range(0, 50).Select(_ => Guid.CreateVersion7().ToString()).ToList();
            foreach (var id in kept.Concat(replayed))
            {
                var delivery = new Delivery(1, 0, new BasicProperties { MessageId = id, Persistent = true }, Encoding.UTF8.GetBytes("{}"), false);
                Assert.Equal(Move.DeadLettered, await failures.DeadLetterAsync(Orders.Names(topology), delivery, $"failed: {id}", null, ct));
            }

            await using var connection = new AdminConnection(stack.BrokerFactory);
            var admin = new FailedMessages(connection, Microsoft.Extensions.Options.Options.Create(new ErrorQueueOptions()), NullLogger<FailedMessages>.Instance);
            var names = Orders.Names(topology);
            foreach (var id in replayed)
            {
                Assert.Equal(kept.Count + replayed.Count - replayed.IndexOf(id), (await admin.ListAsync(names, 0, 100, ct)).Messages.Count);
                Assert.Equal([id], (await admin.ReplayAsync(names, FailedMessageSelection.ById(id), "topology-tests", ct)).Replayed);
            }

            var left = await admin.ListAsync(names, 0, 100, ct);
            Assert.Equal(kept.ToHashSet(), left.Messages.Select(m => m.MessageId!).ToHashSet());
            Assert.All(left.Messages, m => Assert.Equal($"failed: {m.MessageId}", m.Reason));
            Assert.All(left.Messages, m => Assert.Equal(1, m.Attempts));
            Assert.All(left.Messages, m => Assert.NotNull(m.FailedAt));
            Assert.Equal((uint)replayed.Count, await stack.ReadyInPrivateQueueAsync(topology.Queue, ct));
        }
        finally
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    private static async Task<BasicGetResult> WaitForAsync(IChannel channel, string queue, CancellationToken ct)
    {
        for (var i = 0; i < 100; i++)
        {
            if (await channel.BasicGetAsync(queue, autoAck: false, ct) is { } message)
            {
                return message;
            }
            await Task.Delay(100, ct);
        }
        throw new Xunit.Sdk.XunitException($"Nothing arrived in {queue}.");
    }
}
