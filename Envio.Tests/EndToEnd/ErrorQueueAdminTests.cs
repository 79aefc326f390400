using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Envio.ApiService.Endpoints;
using Envio.ApiService.Messaging;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using RabbitMQ.Client;

namespace Envio.Tests.EndToEnd;

/// <summary>An operator's round: find a failed message, read why, fix the cause, replay it into the database.</summary>
[Collection(AppHostTests.Name)]
public sealed class ErrorQueueAdminTests(EnvioStack stack)
{
    [Fact]
    public async Task A_failed_order_is_listed_with_its_reason_without_being_lost_and_replayed_into_the_database()
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(30_001);
        await DeadLetterAsync(order, "Gave up after 4 attempts: The database was unavailable.");

        var listed = await FindAsync(order.OrderId, ct);
        Assert.Equal("Gave up after 4 attempts: The database was unavailable.", listed.GetProperty("reason").GetString());
        Assert.Equal(4, listed.GetProperty("attempts").GetInt32());
        var body = listed.GetProperty("body").GetString()!; // described, never decrypted: no customer data in the listing
        Assert.StartsWith($"encrypted: {EncryptedBody.Scheme}, key {stack.Keys.CurrentKeyId}", body, StringComparison.Ordinal);
        Assert.DoesNotContain(order.Customer.Email, body, StringComparison.Ordinal);
        await FindAsync(order.OrderId, ct); // looking twice: still there

        using var replay = await stack.Api.PostAsJsonAsync("/admin/errors/replay", new ReplayRequest([order.OrderId.ToString()]), ct);
        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        using var outcome = JsonDocument.Parse(await replay.Content.ReadAsStringAsync(ct));
        Assert.Equal(order.OrderId.ToString(), Assert.Single(outcome.RootElement.GetProperty("replayed").EnumerateArray()).GetString());

        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));
        Assert.Null(await TryFindAsync(order.OrderId, ct));
    }

    [Fact]
    public async Task A_discarded_message_is_gone_and_discarding_it_again_is_404()
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(30_101) with { Total = 1m };
        await DeadLetterAsync(order, "The order is not valid: total: …");
        await FindAsync(order.OrderId, ct);

        using (var discard = await stack.Api.DeleteAsync(new Uri($"/admin/errors/{order.OrderId}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, discard.StatusCode);
        }
        Assert.Null(await TryFindAsync(order.OrderId, ct));
        using var again = await stack.Api.DeleteAsync(new Uri($"/admin/errors/{order.OrderId}", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", [order.OrderId]));
    }

    [Fact]
    public async Task Replay_all_replays_each_message_once_even_when_it_fails_again_during_the_call()
    {
        var ct = TestContext.Current.CancellationToken;
        // Orders the consumer refuses at once (the total does not add up): replayed, each is back in the error queue
        // within milliseconds, while the replay is still going through the queue.
        var invalid = Enumerable.Range(0, 200).Select(i => SampleOrders.Create(31_000 + i) with { Total = 1m }).ToList();
        const string deadLetteredBy = "replay-all-test: put here by the test";
        foreach (var order in invalid)
        {
            await DeadLetterAsync(order, deadLetteredBy);
        }

        using var replay = await stack.Api.PostAsJsonAsync("/admin/errors/replay", new ReplayRequest(null, All: true), ct);

        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        using var outcome = JsonDocument.Parse(await replay.Content.ReadAsStringAsync(ct));
        var replayed = outcome.RootElement.GetProperty("replayed").EnumerateArray().Select(e => e.GetString()!).ToList();
        var repeated = replayed.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => $"{g.Key} ×{g.Count()}").ToList();
        Assert.True(repeated.Count == 0, $"replayed more than once in one call: {string.Join(", ", repeated.Take(5))}");
        Assert.Superset(invalid.Select(o => o.OrderId.ToString()).ToHashSet(), replayed.ToHashSet());

        // They failed again, with the reason, and stay for the operator; this test takes its own out again. What is
        // back went through the consumer (its reason, its failure time, the replay's stamp kept), once each: a copy
        // that never left the error queue still carries the test's reason and no stamp.
        var back = await TakeBackAsync(invalid.Select(o => o.OrderId.ToString()).ToHashSet(), ct);
        Assert.Equal(invalid.Count, back.Count);
        foreach (var (id, headers) in back)
        {
            Assert.True(headers.ContainsKey(FailureHeaders.ReplayedAt), $"{id} is back without the replay's stamp: it never left");
            Assert.True(headers.ContainsKey(FailureHeaders.FailedAt), $"{id} is back without the consumer's failure time");
            Assert.Contains("total", Text(headers, FailureHeaders.Reason), StringComparison.Ordinal);
            Assert.NotEqual(deadLetteredBy, Text(headers, FailureHeaders.Reason));
            Assert.Equal(stack.Topology.Queue, Text(headers, FailureHeaders.OriginalQueue));
        }
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", [.. invalid.Select(o => o.OrderId)]));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"all\": true, \"messageIds\": [\"x\"]}")]
    public async Task A_replay_must_name_messages_or_all_of_them(string body)
    {
        var ct = TestContext.Current.CancellationToken;
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using var response = await stack.Api.PostAsync(new Uri("/admin/errors/replay", UriKind.Relative), content, ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    /// <summary>
    /// Two copies of one id in the error queue (a move confirmed late, a message dead-lettered twice) do not end a
    /// replay by ids before the other ids are found: every listed id is replayed, and both copies of the doubled one.
    /// </summary>
    [Fact]
    public async Task A_replay_by_ids_finds_every_id_when_one_of_them_is_there_twice()
    {
        var ct = TestContext.Current.CancellationToken;
        var (doubled, single) = (SampleOrders.Create(47_001), SampleOrders.Create(47_002));
        await DeadLetterAsync(doubled, "replay-test: first copy");
        await DeadLetterAsync(doubled, "replay-test: second copy");
        await DeadLetterAsync(single, "replay-test");

        using var response = await stack.Api.PostAsJsonAsync("/admin/errors/replay",
            new { messageIds = new[] { doubled.OrderId.ToString(), single.OrderId.ToString() } }, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var outcome = (await response.Content.ReadFromJsonAsync<ReplayOutcome>(ct))!;
        Assert.Empty(outcome.NotFound);
        Assert.Equal(2, outcome.Replayed.Count(id => id == doubled.OrderId.ToString()));
        Assert.Contains(single.OrderId.ToString(), outcome.Replayed);
        Assert.Equal(2, await StoredOrders.WaitForAsync(stack.Database, [doubled.OrderId, single.OrderId], TimeSpan.FromSeconds(30)));
    }

    /// <summary>Each id of a replay is searched for through the queue: a list has a limit, and beyond it a clear 400.</summary>
    [Fact]
    public async Task A_replay_of_more_ids_than_a_page_is_refused_naming_the_limit()
    {
        var ct = TestContext.Current.CancellationToken;
        var ids = Enumerable.Range(0, ErrorQueueEndpoints.MaxPageSize + 1).Select(_ => Guid.NewGuid().ToString()).ToList();
        using var response = await stack.Api.PostAsJsonAsync("/admin/errors/replay", new { messageIds = ids }, ct);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Contains($"At most {ErrorQueueEndpoints.MaxPageSize} ids", problem.RootElement.GetProperty("errors").GetProperty("messageIds")[0].GetString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// Acknowledges one error-queue copy of each id (the others go back when the channel closes) and returns its
    /// headers by id; waits for ids not there yet, which the consumer may still be failing.
    /// </summary>
    private async Task<Dictionary<string, IDictionary<string, object?>>> TakeBackAsync(HashSet<string> ids, CancellationToken ct)
    {
        var found = new Dictionary<string, IDictionary<string, object?>>();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (found.Count < ids.Count && DateTime.UtcNow < deadline)
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            while (await channel.BasicGetAsync(stack.Topology.ErrorQueue, autoAck: false, ct) is { } message)
            {
                var id = message.BasicProperties.MessageId ?? "";
                if (ids.Contains(id) && !found.ContainsKey(id))
                {
                    found[id] = message.BasicProperties.Headers ?? new Dictionary<string, object?>();
                    await channel.BasicAckAsync(message.DeliveryTag, multiple: false, ct);
                }
            }
            await Task.Delay(200, ct);
        }
        return found;
    }

    private static string? Text(IDictionary<string, object?> headers, string name) =>
        headers.TryGetValue(name, out var value) ? value switch { byte[] bytes => System.Text.Encoding.UTF8.GetString(bytes), _ => value?.ToString() } : null;

    private Task DeadLetterAsync(Order order, string reason) =>
        ErrorQueueMessages.DeadLetterAsync(stack.Broker, stack.Keys, stack.Topology.ErrorExchange, order, reason, "admin-test");

    private async Task<JsonElement> FindAsync(Guid id, CancellationToken ct) =>
        await TryFindAsync(id, ct) ?? throw new Xunit.Sdk.XunitException($"{id} is not listed in the error queue.");

    private async Task<JsonElement?> TryFindAsync(Guid id, CancellationToken ct)
    {
        using var response = await stack.Api.GetAsync(new Uri("/admin/errors?limit=500", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        foreach (var message in page.RootElement.GetProperty("messages").EnumerateArray())
        {
            if (message.GetProperty("messageId").GetString() == id.ToString())
            {
                return message.Clone();
            }
        }
        return null;
    }
}
