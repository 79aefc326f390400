using System.Net;
using System.Net.Http.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.AppHost.Operations;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using RabbitMQ.Client;

namespace Envio.Tests.Operations;

/// <summary>
/// The dashboard's commands, driven the way the dashboard drives them (the AppHost's command service), judged by
/// what they do: the orders in the database, the messages in the broker's error queue.
/// </summary>
public sealed partial class DevelopmentStackTests
{
    private static readonly TimeSpan Arrival = TimeSpan.FromSeconds(60);
    private readonly TopologyOptions _topology = new();

    [Fact]
    public async Task A_minted_send_token_sends_an_order_that_is_stored()
    {
        var ct = TestContext.Current.CancellationToken;
        var token = await MintAsync("send", ct);

        var order = SampleOrders.Create(41_001);
        using var api = stack.Api(token);
        using var response = await api.PostAsJsonAsync("/api/orders", order, ct);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [order.OrderId], Arrival));
        using var admin = await api.GetAsync(new Uri("/admin/errors", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.Forbidden, admin.StatusCode);
    }

    [Fact]
    public async Task A_minted_admin_token_operates_the_error_queue_but_sends_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        using var api = stack.Api(await MintAsync("admin", ct));
        using var listing = await api.GetAsync(new Uri("/admin/errors", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, listing.StatusCode);
        var order = SampleOrders.Create(41_101);
        using var send = await api.PostAsJsonAsync("/api/orders", order, ct);
        Assert.Equal(HttpStatusCode.Forbidden, send.StatusCode);

        using var both = stack.Api(await MintAsync("both", ct));
        using var sent = await both.PostAsJsonAsync("/api/orders", order, ct);
        Assert.Equal(HttpStatusCode.Accepted, sent.StatusCode);
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [order.OrderId], Arrival));
    }

    [Fact]
    public async Task Show_counts_the_error_queue_and_the_resource_shows_its_depth()
    {
        var ct = TestContext.Current.CancellationToken;
        await DeadLetterAsync(SampleOrders.Create(42_001), "shown");
        var waiting = await ErrorQueueDepthAsync(ct);

        var shown = await ExecuteAsync("messaging", ErrorQueueCommands.Show, [], ct);
        Assert.True(shown.Success, shown.Message);
        Assert.StartsWith($"{waiting} message(s) wait", shown.Message, StringComparison.Ordinal);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await stack.App.ResourceNotifications.WaitForResourceAsync("messaging",
            e => e.Snapshot.Properties.Any(p => p.Name == QueueDepths.ErrorQueueProperty(Orders.Names(_topology)) && Equals(p.Value, waiting))
                && e.Snapshot.Properties.Any(p => p.Name == QueueDepths.WorkQueueProperty(Orders.Names(_topology)) && p.Value is uint), timeout.Token);
        await ExecuteAsync("messaging", ErrorQueueCommands.ReplayAll, [], ct); // leave the queue as the other tests expect
    }

    [Fact]
    public async Task Replay_one_stores_that_order_and_leaves_the_others_waiting()
    {
        var ct = TestContext.Current.CancellationToken;
        var replayed = SampleOrders.Create(43_001);
        var waiting = SampleOrders.Create(43_002);
        await DeadLetterAsync(replayed, "replay one");
        await DeadLetterAsync(waiting, "stays");

        var result = await ExecuteAsync("messaging", ErrorQueueCommands.ReplayOne, [MessageId(replayed.OrderId)], ct);
        Assert.True(result.Success, result.Message);

        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [replayed.OrderId], Arrival));
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Orders, "orders", [waiting.OrderId]));
        Assert.True(await InErrorQueueAsync(waiting.OrderId, ct));
        Assert.False(await InErrorQueueAsync(replayed.OrderId, ct));

        var unknown = await ExecuteAsync("messaging", ErrorQueueCommands.ReplayOne, [MessageId(Guid.NewGuid())], ct);
        Assert.False(unknown.Success);
        await ExecuteAsync("messaging", ErrorQueueCommands.ReplayAll, [], ct);
    }

    [Fact]
    public async Task Discard_one_removes_it_from_the_error_queue_and_it_is_never_stored()
    {
        var ct = TestContext.Current.CancellationToken;
        var discarded = SampleOrders.Create(44_001);
        await DeadLetterAsync(discarded, "discard me");

        var result = await ExecuteAsync("messaging", ErrorQueueCommands.DiscardOne, [MessageId(discarded.OrderId)], ct);
        Assert.True(result.Success, result.Message);
        Assert.False(await InErrorQueueAsync(discarded.OrderId, ct));

        var again = await ExecuteAsync("messaging", ErrorQueueCommands.DiscardOne, [MessageId(discarded.OrderId)], ct);
        Assert.False(again.Success);
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Orders, "orders", [discarded.OrderId]));
    }

    [Fact]
    public async Task Replay_all_stores_every_order_that_waited_and_empties_the_error_queue()
    {
        var ct = TestContext.Current.CancellationToken;
        Order[] orders = [SampleOrders.Create(45_001), SampleOrders.Create(45_002), SampleOrders.Create(45_003)];
        foreach (var order in orders)
        {
            await DeadLetterAsync(order, "replay all");
        }

        var result = await ExecuteAsync("messaging", ErrorQueueCommands.ReplayAll, [], ct);
        Assert.True(result.Success, result.Message);

        var ids = orders.Select(order => order.OrderId).ToArray();
        Assert.Equal(ids.Length, await StoredOrders.WaitForAsync(stack.Orders, ids, Arrival));
        Assert.Equal(0u, await ErrorQueueDepthAsync(ct));
    }

    private async Task<string> MintAsync(string scopes, CancellationToken ct)
    {
        var result = await ExecuteAsync("api", DevelopmentTokenCommands.MintToken,
            [new InteractionInput { Name = DevelopmentTokenCommands.ScopesArgument, InputType = InputType.Choice, Value = scopes }], ct);
        Assert.True(result.Success, result.Message);
        return Assert.IsType<string>(result.Data?.Value);
    }

    private static InteractionInput MessageId(Guid id) =>
        new() { Name = ErrorQueueCommands.MessageIdArgument, InputType = InputType.Text, Value = id.ToString() };

    private Task<ExecuteCommandResult> ExecuteAsync(string resource, string command, InteractionInput[] arguments, CancellationToken ct) =>
        stack.App.Services.GetRequiredService<ResourceCommandService>()
            .ExecuteCommandAsync(resource, command, new InteractionInputCollection(arguments), ct);

    private Task DeadLetterAsync(Order order, string reason) =>
        ErrorQueueMessages.DeadLetterAsync(stack.Broker, stack.Keys, _topology.ErrorExchange, order, reason, "dashboard-test");

    private async Task<uint> ErrorQueueDepthAsync(CancellationToken ct)
    {
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        return (await channel.QueueDeclarePassiveAsync(_topology.ErrorQueue, ct)).MessageCount;
    }

    /// <summary>Looks through the error queue without taking anything: every message read goes back.</summary>
    private async Task<bool> InErrorQueueAsync(Guid id, CancellationToken ct)
    {
        var found = false;
        await using (var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct))
        {
            while (await channel.BasicGetAsync(_topology.ErrorQueue, autoAck: false, ct) is { } message)
            {
                found |= message.BasicProperties.MessageId == id.ToString();
            }
        } // closing the channel hands every unacknowledged message back
        return found;
    }
}
