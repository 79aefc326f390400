using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Envio.Contracts.Orders;
using Envio.Messaging;
using Envio.Tests.Support;
using RabbitMQ.Client;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// Messages an id does not name alone: two copies of one id (a move confirmed late, a message dead-lettered twice)
/// and messages without an id (a foreign producer's). Each can be replayed or discarded by the listing's handle, and
/// a replay by ids goes through the whole queue, every copy of every id.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class ErrorQueueCopiesTests(EnvioStack stack)
{
    [Fact]
    public async Task A_replay_by_ids_replays_every_copy_even_when_a_copy_comes_before_the_other_ids()
    {
        var ct = TestContext.Current.CancellationToken;
        var (doubled, single) = (SampleOrders.Create(48_001), SampleOrders.Create(48_002));
        // The second copy of the doubled id waits behind the other id: a scan that stops once it has seen every id once
        // leaves it in the error queue.
        await DeadLetterAsync(doubled, "copies-test: first copy");
        await DeadLetterAsync(single, "copies-test");
        await DeadLetterAsync(doubled, "copies-test: second copy");

        using var response = await stack.Api.PostAsJsonAsync("/admin/errors/replay",
            new { messageIds = new[] { doubled.OrderId.ToString(), single.OrderId.ToString() } }, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var outcome = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        var replayed = outcome.RootElement.GetProperty("replayed").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal(2, replayed.Count(id => id == doubled.OrderId.ToString()));
        Assert.Equal(1, replayed.Count(id => id == single.OrderId.ToString()));
        Assert.Empty(outcome.RootElement.GetProperty("notFound").EnumerateArray());
        // Stored once each (the insert is idempotent by id), and nothing of theirs is left in the error queue.
        Assert.Equal(2, await StoredOrders.WaitForAsync(stack.Database, [doubled.OrderId, single.OrderId], TimeSpan.FromSeconds(60)));
        Assert.Equal(2, await StoredOrders.CountAsync(stack.Database, "orders", [doubled.OrderId, single.OrderId]));
        Assert.DoesNotContain(await ListAsync(ct), m => m.MessageId == doubled.OrderId.ToString() || m.MessageId == single.OrderId.ToString());
    }

    /// <summary>
    /// A replay by ids goes on to the end of the queue, so the messages it replayed that fail again at once come back
    /// while it still looks: each is left for the next call (it carries this call's replay time), not replayed again.
    /// </summary>
    [Fact]
    public async Task A_replay_by_ids_replays_each_copy_once_even_when_it_fails_again_during_the_call()
    {
        var ct = TestContext.Current.CancellationToken;
        var invalid = Enumerable.Range(0, 200).Select(i => SampleOrders.Create(48_300 + i) with { Total = 1m }).ToList();
        foreach (var order in invalid)
        {
            await DeadLetterAsync(order, "copies-test: not valid");
        }
        var ids = invalid.Select(o => o.OrderId.ToString()).ToHashSet();

        using var response = await stack.Api.PostAsJsonAsync("/admin/errors/replay", new { messageIds = ids }, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var outcome = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        var replayed = outcome.RootElement.GetProperty("replayed").EnumerateArray().Select(e => e.GetString()!).ToList();
        var repeated = replayed.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => $"{g.Key} ×{g.Count()}").ToList();
        Assert.True(repeated.Count == 0, $"replayed more than once in one call: {string.Join(", ", repeated.Take(5))}");
        Assert.Equal(ids, replayed.ToHashSet());
        Assert.Equal(invalid.Count, await stack.TakeFromErrorQueueAsync(ids, ct)); // failed again, each once; taken out again
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", [.. invalid.Select(o => o.OrderId)]));
    }

    [Fact]
    public async Task Of_two_copies_of_one_id_one_is_discarded_by_its_handle_and_the_other_stays_and_is_replayed_by_its_own()
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(48_101);
        await DeadLetterAsync(order, "copies-test: the database was unavailable");
        await DeadLetterAsync(order, "copies-test: the key was missing");

        var copies = (await ListAsync(ct)).Where(m => m.MessageId == order.OrderId.ToString()).ToList();
        Assert.Equal(2, copies.Count);
        Assert.Equal(2, copies.Select(c => c.Handle).Distinct().Count());
        var (discarded, kept) = (copies.Single(c => c.Reason.Contains("database", StringComparison.Ordinal)), copies.Single(c => c.Reason.Contains("key", StringComparison.Ordinal)));

        using (var discard = await stack.Api.DeleteAsync(new Uri($"/admin/errors/handles/{discarded.Handle}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, discard.StatusCode);
        }
        Assert.Equal([kept], (await ListAsync(ct)).Where(m => m.MessageId == order.OrderId.ToString()));
        using (var again = await stack.Api.DeleteAsync(new Uri($"/admin/errors/handles/{discarded.Handle}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
            Assert.Equal("application/problem+json", again.Content.Headers.ContentType?.MediaType);
        }

        using var replay = await stack.Api.PostAsJsonAsync("/admin/errors/replay", new { handles = new[] { kept.Handle } }, ct);
        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        using var outcome = JsonDocument.Parse(await replay.Content.ReadAsStringAsync(ct));
        Assert.Equal([kept.Handle], outcome.RootElement.GetProperty("replayedHandles").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal([order.OrderId.ToString()], outcome.RootElement.GetProperty("replayed").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));
        Assert.DoesNotContain(await ListAsync(ct), m => m.MessageId == order.OrderId.ToString());
    }

    [Fact]
    public async Task Two_copies_alike_in_everything_share_a_handle_and_a_discard_by_it_takes_one()
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(48_201) with { Total = 1m };
        var (properties, body) = ErrorQueueMessages.DeadLettered(stack.Keys, order, "copies-test: moved twice", "copies-test");
        await PublishToErrorQueueAsync(properties, body, ct);
        await PublishToErrorQueueAsync(properties, body, ct);

        var copies = (await ListAsync(ct)).Where(m => m.MessageId == order.OrderId.ToString()).ToList();
        Assert.Equal(2, copies.Count);
        var handle = Assert.Single(copies.Select(c => c.Handle).Distinct());

        using (var discard = await stack.Api.DeleteAsync(new Uri($"/admin/errors/handles/{handle}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, discard.StatusCode);
        }
        Assert.Equal([handle], (await ListAsync(ct)).Where(m => m.MessageId == order.OrderId.ToString()).Select(m => m.Handle));
        using (var discard = await stack.Api.DeleteAsync(new Uri($"/admin/errors/handles/{handle}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, discard.StatusCode);
        }
        Assert.DoesNotContain(await ListAsync(ct), m => m.MessageId == order.OrderId.ToString());
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", [order.OrderId]));
    }

    /// <summary>
    /// A message without an id (a foreign producer's, plaintext): listed with a handle, replayed by it (the consumer
    /// refuses it again, so it comes back with its new reason under a new handle), then discarded by that one.
    /// </summary>
    [Fact]
    public async Task A_message_without_an_id_is_replayed_and_discarded_by_its_handle()
    {
        var ct = TestContext.Current.CancellationToken;
        var correlationId = $"no-id-{Guid.NewGuid():N}";
        var properties = new BasicProperties
        {
            CorrelationId = correlationId, Persistent = true, Type = "envio.order",
            Headers = new Dictionary<string, object?> { [FailureHeaders.Reason] = "copies-test: no id", [FailureHeaders.Attempts] = 1 },
        };
        await PublishToErrorQueueAsync(properties, Encoding.UTF8.GetBytes("""{"orderId":"not one"}"""), ct);

        var listed = Assert.Single(await ListAsync(ct), m => m.CorrelationId == correlationId);
        Assert.Null(listed.MessageId);
        Assert.Matches("^[0-9a-f]{32}$", listed.Handle);

        using (var replay = await stack.Api.PostAsJsonAsync("/admin/errors/replay", new { handles = new[] { listed.Handle } }, ct))
        {
            Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
            using var outcome = JsonDocument.Parse(await replay.Content.ReadAsStringAsync(ct));
            Assert.Equal([listed.Handle], outcome.RootElement.GetProperty("replayedHandles").EnumerateArray().Select(e => e.GetString()));
            Assert.Empty(outcome.RootElement.GetProperty("replayed").EnumerateArray());
            Assert.Empty(outcome.RootElement.GetProperty("notFound").EnumerateArray());
        }

        var back = await WaitForAsync(m => m.CorrelationId == correlationId && m.Handle != listed.Handle, ct);
        Assert.NotEqual("copies-test: no id", back.Reason);
        Assert.Single(await ListAsync(ct), m => m.CorrelationId == correlationId); // replayed once, not twice
        using (var discard = await stack.Api.DeleteAsync(new Uri($"/admin/errors/handles/{back.Handle}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, discard.StatusCode);
        }
        Assert.DoesNotContain(await ListAsync(ct), m => m.CorrelationId == correlationId);
    }

    [Fact]
    public async Task A_handle_not_in_the_queue_is_reported_and_a_malformed_one_is_a_400()
    {
        var ct = TestContext.Current.CancellationToken;
        var absent = new string('0', 32);

        using (var replay = await stack.Api.PostAsJsonAsync("/admin/errors/replay", new { messageIds = AbsentIds, handles = new[] { absent } }, ct))
        {
            Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
            using var outcome = JsonDocument.Parse(await replay.Content.ReadAsStringAsync(ct));
            Assert.Equal(["not-in-the-queue", absent], outcome.RootElement.GetProperty("notFound").EnumerateArray().Select(e => e.GetString()));
        }
        using (var discard = await stack.Api.DeleteAsync(new Uri($"/admin/errors/handles/{absent}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, discard.StatusCode);
        }
        using (var malformed = await stack.Api.PostAsJsonAsync("/admin/errors/replay", new { handles = NotAHandle }, ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
            using var problem = JsonDocument.Parse(await malformed.Content.ReadAsStringAsync(ct));
            Assert.Contains("is no handle", problem.RootElement.GetProperty("errors").GetProperty("handles")[0].GetString(), StringComparison.Ordinal);
        }
        using (var malformed = await stack.Api.DeleteAsync(new Uri("/admin/errors/handles/not-a-handle", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
        }
    }

    private static readonly string[] NotAHandle = ["ZZ"];

    private static readonly string[] AbsentIds = ["not-in-the-queue"];

    private sealed record Listed(string Handle, string? MessageId, string? CorrelationId, string Reason);

    private Task DeadLetterAsync(Order order, string reason) =>
        ErrorQueueMessages.DeadLetterAsync(stack.Broker, stack.Keys, stack.Topology.ErrorExchange, order, reason, "copies-test");

    private async Task PublishToErrorQueueAsync(BasicProperties properties, byte[] body, CancellationToken ct)
    {
        await using var channel = await stack.Broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct);
        await channel.BasicPublishAsync(stack.Topology.ErrorExchange, "", mandatory: true, properties, body, ct);
    }

    private async Task<List<Listed>> ListAsync(CancellationToken ct)
    {
        using var response = await stack.Api.GetAsync(new Uri("/admin/errors?limit=500", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return [.. page.RootElement.GetProperty("messages").EnumerateArray().Select(m => new Listed(
            m.GetProperty("handle").GetString()!, m.GetProperty("messageId").GetString(), m.GetProperty("correlationId").GetString(),
            m.GetProperty("reason").GetString() ?? ""))];
    }

    private async Task<Listed> WaitForAsync(Func<Listed, bool> match, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if ((await ListAsync(ct)).FirstOrDefault(match) is { } found)
            {
                return found;
            }
            await Task.Delay(500, ct);
        }
        throw new Xunit.Sdk.XunitException("The message did not come back to the error queue within 60 s.");
    }
}
