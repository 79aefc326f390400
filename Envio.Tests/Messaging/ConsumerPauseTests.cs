using System.Net;
using System.Text.Json;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.Extensions.Hosting;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>
/// Pause and resume as kept state: the real consumer runs in-process as replicas of their own (each with its own
/// connections, on a private work queue) beside the stack's consumer, and the stack's API sends the commands on the
/// stack's control exchange, as an operator would.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class ConsumerPauseTests(EnvioStack stack)
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A pause sent while one replica's connections recover (closed by the broker) reaches it anyway, and a replica
    /// started after the pause stays paused: orders posted meanwhile stay in the work queue, none is stored; after
    /// the resume every order is stored once. Before, the command reached only the replicas listening at that
    /// instant: the recovering one and the late one consumed while the operator saw the pause confirmed.
    /// </summary>
    [Fact]
    public async Task A_pause_sent_while_a_replica_recovers_holds_it_and_a_later_replica_and_the_resume_stores_each_order_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = SharingTheStacksControl(Topologies.Private());
        await using var first = new InProcessPipeline(stack, topology);
        await using var recovering = new InProcessPipeline(stack, topology);
        await using var late = new InProcessPipeline(stack, topology);
        await first.StartPublisherAsync();
        var (firstConnection, _) = await StartReplicaAsync(first, "pause-first", ct);
        var (recoveringConnection, recoveringName) = await StartReplicaAsync(recovering, "pause-recovering", ct);
        await using (firstConnection)
        await using (recoveringConnection)
        {
            var before = Enumerable.Range(0, 20).Select(i => SampleOrders.Create(60_000 + i)).ToList();
            await first.PublishAsync([.. before.Select(o => InProcessPipeline.Message(o))], ct);
            Assert.Equal(before.Count, await StoredOrders.WaitForAsync(stack.Database, [.. before.Select(o => o.OrderId)], TimeSpan.FromSeconds(30)));

            var during = Enumerable.Range(0, 30).Select(i => SampleOrders.Create(60_100 + i)).ToList();
            try
            {
                // The pause goes out while the recovering replica's connections are down (they recover after 2 s).
                Assert.True(await BrokerControl.CloseConnectionsAsync(stack.App, recoveringName, ct) >= 1);
                using (var pause = await stack.Api.PostAsync(new Uri("/admin/consumers/pause?type=order", UriKind.Relative), null, ct))
                {
                    Assert.True(pause.IsSuccessStatusCode, $"pause: {(int)pause.StatusCode}");
                }
                await WaitForAsync(() => recoveringConnection.IsOpen, TimeSpan.FromSeconds(20), "the replica's connection to recover");
                await Task.Delay(TimeSpan.FromSeconds(2), ct);

                await first.PublishAsync([.. during.Select(o => InProcessPipeline.Message(o))], ct);
                await Task.Delay(Quiet, ct);
                Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", [.. during.Select(o => o.OrderId)]));
                Assert.Equal((uint)during.Count, await stack.ReadyInPrivateQueueAsync(topology.Queue, ct));

                // A replica started while paused (a restart, an autoscaler's new one) takes nothing either.
                var (lateConnection, _) = await StartReplicaAsync(late, "pause-late", ct);
                await using (lateConnection)
                {
                    await Task.Delay(Quiet, ct);
                    Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", [.. during.Select(o => o.OrderId)]));
                    Assert.Equal((uint)during.Count, await stack.ReadyInPrivateQueueAsync(topology.Queue, ct));
                    await ResumeAsync(ct);

                    var all = before.Concat(during).Select(o => o.OrderId).ToList();
                    Assert.Equal(all.Count, await StoredOrders.WaitForAsync(stack.Database, all, TimeSpan.FromSeconds(60)));
                    await WaitForAsync(async () => await stack.ReadyInPrivateQueueAsync(topology.Queue, ct) == 0, TimeSpan.FromSeconds(30), "the work queue to drain");
                    Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(topology.ErrorQueue, ct));
                    Assert.Equal(all.Count, await StoredOrders.CountAsync(stack.Database, "orders", all));
                    await late.DisposeConsumerAsync();
                }
            }
            finally
            {
                await ResumeAsync(CancellationToken.None);
                await first.DisposeConsumerAsync();
                await recovering.DisposeConsumerAsync();
            }
        }
    }

    /// <summary>The answer names the state sent and every consumer that applied it: the stack's and an in-process replica.</summary>
    [Fact]
    public async Task Pause_and_resume_answer_with_the_state_sent_and_the_consumers_that_confirmed_it()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = SharingTheStacksControl(Topologies.Private());
        await using var replica = new InProcessPipeline(stack, topology);
        var (connection, name) = await StartReplicaAsync(replica, "confirm", ct);
        await using (connection)
        {
            try
            {
                var paused = await CommandAsync("pause", ct);
                var sequence = paused.GetProperty("sequence").GetInt64();
                Assert.Contains("order", paused.GetProperty("paused").EnumerateArray().Select(t => t.GetString()));
                var confirmed = Confirmations(paused);
                Assert.Equal(sequence, confirmed[name].Sequence);
                Assert.Contains("order", confirmed[name].Paused);
                Assert.True(confirmed.Count >= 2, $"the stack's consumer did not confirm: {paused}");
                Assert.Equal(paused.GetProperty("confirmations").GetArrayLength(), confirmed.Count);
                Assert.True(replica.Switch.IsPaused(Orders.Type));

                var resumed = await CommandAsync("resume", ct);
                Assert.Equal(sequence + 1, resumed.GetProperty("sequence").GetInt64());
                Assert.DoesNotContain("order", resumed.GetProperty("paused").EnumerateArray().Select(t => t.GetString()));
                Assert.Equal(sequence + 1, Confirmations(resumed)[name].Sequence);
                Assert.DoesNotContain("order", Confirmations(resumed)[name].Paused);
                Assert.False(replica.Switch.IsPaused(Orders.Type));
            }
            finally
            {
                await ResumeAsync(CancellationToken.None);
                await replica.DisposeConsumerAsync();
            }
        }
    }

    /// <summary>
    /// Commands carry the user the broker validated: a replica told to obey another broker user only
    /// (<c>Envio:Topology:ControlUser</c>) ignores the API's pause and goes on storing, and is not among the confirmations,
    /// while one told to obey the API's user pauses; a sender cannot claim another user (the broker refuses the publish).
    /// </summary>
    [Fact]
    public async Task Only_the_control_users_commands_count_and_no_sender_can_claim_another_user()
    {
        var ct = TestContext.Current.CancellationToken;
        var obeying = SharingTheStacksControl(Topologies.Private());
        obeying.ControlUser = stack.BrokerFactory.UserName;
        var ignoring = SharingTheStacksControl(Topologies.Private());
        ignoring.ControlUser = "operators-only";
        await using var obeyingReplica = new InProcessPipeline(stack, obeying);
        await using var ignoringReplica = new InProcessPipeline(stack, ignoring);
        await ignoringReplica.StartPublisherAsync();
        var (obeyingConnection, obeyingName) = await StartReplicaAsync(obeyingReplica, "control-user", ct);
        var (ignoringConnection, ignoringName) = await StartReplicaAsync(ignoringReplica, "other-user", ct);
        await using (obeyingConnection)
        await using (ignoringConnection)
        {
            try
            {
                var confirmed = Confirmations(await CommandAsync("pause", ct));
                Assert.Contains(obeyingName, confirmed.Keys);
                Assert.DoesNotContain(ignoringName, confirmed.Keys);
                Assert.True(obeyingReplica.Switch.IsPaused(Orders.Type));

                var orders = Enumerable.Range(0, 5).Select(i => SampleOrders.Create(62_000 + i)).ToList();
                await ignoringReplica.PublishAsync([.. orders.Select(o => InProcessPipeline.Message(o))], ct);
                Assert.Equal(orders.Count, await StoredOrders.WaitForAsync(stack.Database, [.. orders.Select(o => o.OrderId)], TimeSpan.FromSeconds(30)));
                Assert.False(ignoringReplica.Switch.IsPaused(Orders.Type));

                await using var forging = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
                await forging.BasicPublishAsync(stack.Topology.ControlExchange, "", mandatory: false,
                    new BasicProperties { Type = ConsumerControl.Pause, UserId = "operators-only" }, ReadOnlyMemory<byte>.Empty, ct);
                await WaitForAsync(() => !forging.IsOpen, TimeSpan.FromSeconds(10), "the broker to refuse a claimed user_id");
                Assert.Contains("user_id", forging.CloseReason?.ReplyText ?? "", StringComparison.Ordinal);
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                Assert.False(ignoringReplica.Switch.IsPaused(Orders.Type));
            }
            finally
            {
                await ResumeAsync(CancellationToken.None);
                await obeyingReplica.DisposeConsumerAsync();
                await ignoringReplica.DisposeConsumerAsync();
            }
        }
    }

    /// <summary>
    /// With a delivery limit of 1 (a second return dead-letters), an order flow paused and resumed again and again by
    /// commands: every order is stored once and none reaches the error queue. Before, each pause returned the partly
    /// filled batch and the buffer (the rest by closing the channel), so orders caught in the prefetch at two pauses
    /// went to the error queue; now a pause writes what was delivered and returns nothing.
    /// </summary>
    [Fact]
    public async Task Pausing_and_resuming_many_times_while_orders_flow_stores_each_once_and_moves_none_to_the_error_queue()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        topology.DeliveryLimit = 1;
        await using var pipeline = new InProcessPipeline(stack, topology);
        await pipeline.StartPublisherAsync();
        await pipeline.StartConsumerAsync(options: new ConsumerOptions
        {
            Channels = 1, Prefetch = 100, BatchSize = 5, BatchWindow = TimeSpan.FromMilliseconds(50), QuickRetries = 0,
        });
        var orders = Enumerable.Range(0, 600).Select(i => SampleOrders.Create(61_000 + i)).ToList();
        await using var control = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        await ConsumerControl.DeclareAsync(c => stack.Broker.CreateChannelAsync(null, c), topology, BrokerVersion.Of(stack.Broker), ct);

        var flow = Task.Run(async () =>
        {
            foreach (var chunk in orders.Chunk(20))
            {
                await pipeline.PublishAsync([.. chunk.Select(o => InProcessPipeline.Message(o))], ct);
                await Task.Delay(TimeSpan.FromMilliseconds(50), ct);
            }
        }, ct);
        for (var cycle = 0; cycle < 25; cycle++)
        {
            // Commands as an earlier API sends them (type and header, no body): every build understands them.
            await SendAsync(control, topology, ConsumerControl.Pause, ct);
            await Task.Delay(TimeSpan.FromMilliseconds(300), ct);
            await SendAsync(control, topology, ConsumerControl.Resume, ct);
            await Task.Delay(TimeSpan.FromMilliseconds(100), ct);
        }
        await flow;

        var ids = orders.Select(o => o.OrderId).ToList();
        Assert.Equal(ids.Count, await StoredOrders.WaitForAsync(stack.Database, ids, TimeSpan.FromSeconds(90)));
        await WaitForAsync(async () => await stack.ReadyInPrivateQueueAsync(topology.Queue, ct) == 0, TimeSpan.FromSeconds(30), "the work queue to drain");
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(topology.ErrorQueue, ct));
        Assert.Equal(ids.Count, await StoredOrders.CountAsync(stack.Database, "orders", ids));
    }

    private static Task SendAsync(IChannel channel, TopologyOptions topology, string command, CancellationToken ct) =>
        channel.BasicPublishAsync(topology.ControlExchange, "", mandatory: false,
            new BasicProperties { Type = command, AppId = "pause-test", Headers = new Dictionary<string, object?> { [ConsumerControl.DataObjectHeader] = "order" } },
            ReadOnlyMemory<byte>.Empty, ct).AsTask();

    /// <summary>A private work queue, but the stack's control exchange: the stack's API commands these replicas.</summary>
    private TopologyOptions SharingTheStacksControl(TopologyOptions topology)
    {
        topology.ControlExchange = stack.Topology.ControlExchange;
        return topology;
    }

    /// <summary>A replica with connections of its own, named so that the broker can close them, recovering after 2 s.</summary>
    private async Task<(IConnection Consuming, string Name)> StartReplicaAsync(InProcessPipeline pipeline, string purpose, CancellationToken ct)
    {
        var name = $"envio-test {purpose} {Guid.NewGuid():N}";
        var factory = new ConnectionFactory { Uri = stack.BrokerFactory.Uri, NetworkRecoveryInterval = TimeSpan.FromSeconds(2) }
            .TrustOnly(stack.App.CaCertificatePath());
        var consuming = await factory.CreateConnectionAsync(name, ct);
        await pipeline.StartConsumerAsync(options: new ConsumerOptions
        {
            Channels = 1, Prefetch = 20, BatchSize = 10, QuickRetries = 0, Name = name,
        }, connection: consuming, control: factory);
        return (consuming, name);
    }

    private async Task<JsonElement> CommandAsync(string command, CancellationToken ct)
    {
        using var response = await stack.Api.PostAsync(new Uri($"/admin/consumers/{command}?type=order", UriKind.Relative), null, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{command}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static Dictionary<string, (long Sequence, List<string?> Paused)> Confirmations(JsonElement answer) =>
        answer.GetProperty("confirmations").EnumerateArray().ToDictionary(
            c => c.GetProperty("consumer").GetString()!,
            c => (c.GetProperty("sequence").GetInt64(), c.GetProperty("paused").EnumerateArray().Select(t => t.GetString()).ToList()));

    private async Task ResumeAsync(CancellationToken ct)
    {
        using var resume = await stack.Api.PostAsync(new Uri("/admin/consumers/resume?type=order", UriKind.Relative), null, ct);
        Assert.True(resume.IsSuccessStatusCode, $"resume: {(int)resume.StatusCode}");
    }

    private static Task WaitForAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        WaitForAsync(() => Task.FromResult(condition()), timeout, what);

    private static async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"Timed out waiting for {what}.");
            await Task.Delay(100);
        }
    }
}
