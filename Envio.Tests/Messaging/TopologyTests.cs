using System.Text;
using Envio.Contracts.Messaging;
using Envio.Tests.Support;
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
            await Topology.DeclareAsync(channel, topology, TestContext.Current.CancellationToken);
            await Topology.DeclareAsync(channel, topology, TestContext.Current.CancellationToken);
            Assert.True(channel.IsOpen);
        }
        finally
        {
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    [Fact]
    public async Task A_message_redelivered_past_the_delivery_limit_is_dead_lettered_to_the_error_queue()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        topology.DeliveryLimit = 2;
        await using var channel = await stack.Broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct);
        await Topology.DeclareAsync(channel, topology, ct);
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
