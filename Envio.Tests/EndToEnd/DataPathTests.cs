using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Envio.ApiService.Endpoints;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;

namespace Envio.Tests.EndToEnd;

/// <summary>PostgreSQL: the shared stack.</summary>
[Collection(AppHostTests.Name)]
public sealed class PostgresDataPathTests(EnvioStack stack) : DataPathTests(stack);

/// <summary>SQL Server: a stack of its own, started for these tests, storing into the TDS server.</summary>
[Collection(AppHostTests.Name)]
public sealed class SqlServerDataPathTests(SqlServerStack stack) : DataPathTests(stack), IClassFixture<SqlServerStack>;

/// <summary>Orders from HTTP through RabbitMQ into the database, exactly once, on the real stack, for each engine.</summary>
public abstract class DataPathTests(EnvioStack stack)
{
    private static readonly TimeSpan ArrivalTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_thousand_orders_posted_singly_and_in_batches_become_exactly_a_thousand_rows_equal_to_what_was_posted()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        var orders = Enumerable.Range(1, 1_000).Select(i => SampleOrders.Create(i, items: 1 + i % 4)).ToList();
        var singles = orders.Take(200).ToList();
        // One batch of 800: more than a channel's unconfirmed-publish bound (512), so publishes wait their turn.
        List<List<Order>> batches = [orders[200..]];
        // Both replicas' sessions consume before anything is sent (a stack's health says a replica runs, not that it
        // subscribed): the share asserted below is then the broker's round robin, not a race with a session's start.
        await stack.WaitForConsumersAsync(2 * new ConsumerOptions().Channels, ct);
        // Nothing an earlier test sent is still held: a replica whose prefetch a slow batch filled would take no share.
        await stack.WaitUntilQueuesDrainedAsync(ct);
        var started = DateTimeOffset.UtcNow;

        var accepted = new List<Guid>();
        await Parallel.ForEachAsync(singles, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct }, async (order, token) =>
        {
            var ids = await PostAcceptedAsync("/api/orders", order, token);
            lock (accepted)
            {
                accepted.AddRange(ids);
            }
        });
        foreach (var batch in batches)
        {
            accepted.AddRange(await PostAcceptedAsync("/api/orders/batch", batch, ct));
        }

        Assert.Equal(orders.Select(o => o.OrderId).Order(), accepted.Order());
        Assert.Equal(1_000, await StoredOrders.WaitForAsync(stack.Orders, accepted, ArrivalTimeout));

        var stored = await StoredOrders.ReadAsync(stack.Orders, stack.ColumnKeys, accepted);
        Assert.Equal(1_000, stored.Count);
        foreach (var order in orders)
        {
            Assert.Equal(SampleOrders.Describe(order), SampleOrders.Describe(stored[order.OrderId].Order));
        }
        Assert.Equal(orders.Sum(o => o.Items.Count), await StoredOrders.CountAsync(stack.Orders, "order_items", accepted));

        // Two consumer replicas run: both took a share.
        var shares = stored.Values.GroupBy(s => s.ReceivedBy).Select(g => $"{g.Key}: {g.Count()}").ToList();
        Assert.True(shares.Count == 2, $"the rows were written by {string.Join(", ", shares)}; what the services warned of meanwhile:\n"
            + string.Join("\n", stack.App.ServiceWarnings(started)));

        await stack.WaitUntilQueuesDrainedAsync(ct);
    }

    [Fact]
    public async Task The_largest_batch_is_accepted_whole()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        var orders = Enumerable.Range(0, DataObjectEndpoints.MaxBatchSize).Select(i => SampleOrders.Create(40_000 + i, items: 1)).ToList();

        var accepted = await PostAcceptedAsync("/api/orders/batch", orders, ct);

        Assert.Equal(DataObjectEndpoints.MaxBatchSize, accepted.Length);
        Assert.Equal(DataObjectEndpoints.MaxBatchSize, await StoredOrders.WaitForAsync(stack.Orders, accepted, ArrivalTimeout));
    }

    [Fact]
    public async Task The_same_order_posted_again_and_twice_in_one_batch_is_stored_once()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(5_001);
        await stack.WaitUntilQueuesDrainedAsync(ct);
        var failedBefore = await stack.ReadyInPrivateQueueAsync(stack.Topology.ErrorQueue, ct);

        Assert.Equal([order.OrderId], await PostAcceptedAsync("/api/orders", order, ct));
        Assert.Equal([order.OrderId], await PostAcceptedAsync("/api/orders", order, ct));
        Assert.Equal([order.OrderId, order.OrderId], await PostAcceptedAsync("/api/orders/batch", new List<Order> { order, order }, ct));

        // A later order on the same path proves the duplicates were consumed, not merely still queued.
        var marker = SampleOrders.Create(5_002);
        await PostAcceptedAsync("/api/orders", marker, ct);
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [marker.OrderId], ArrivalTimeout));
        await stack.WaitUntilQueuesDrainedAsync(ct);

        Assert.Equal(1, await StoredOrders.CountAsync(stack.Orders, "orders", [order.OrderId]));
        Assert.Equal(order.Items.Count, await StoredOrders.CountAsync(stack.Orders, "order_items", [order.OrderId]));
        Assert.Equal(failedBefore, await stack.ReadyInPrivateQueueAsync(stack.Topology.ErrorQueue, ct)); // a duplicate is not a failure
    }

    /// <summary>
    /// A batch that meets the primary key (some of its orders are stored already) takes the stores' careful path:
    /// the new orders of that batch are stored all the same, none is dead-lettered, and nothing is left queued.
    /// </summary>
    [Fact]
    public async Task A_batch_of_stored_and_new_orders_stores_every_new_one_and_sends_none_to_the_error_queue()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        // Nothing of earlier tests still on its way (a retry) can reach the error queue while it is counted.
        await stack.WaitUntilQueuesDrainedAsync(ct);
        var stored = Enumerable.Range(0, 20).Select(i => SampleOrders.Create(5_100 + i)).ToList();
        await PostAcceptedAsync("/api/orders/batch", stored, ct);
        Assert.Equal(stored.Count, await StoredOrders.WaitForAsync(stack.Orders, [.. stored.Select(o => o.OrderId)], ArrivalTimeout));
        await stack.WaitUntilQueuesDrainedAsync(ct);
        var failedBefore = await stack.ReadyInPrivateQueueAsync(stack.Topology.ErrorQueue, ct);

        // Every fifth a stored one: the queue hands its consumers (two replicas, two channels each) messages in turn,
        // and a stride of five puts both kinds in every consumer's share, whichever of the first few it is.
        var fresh = Enumerable.Range(0, 80).Select(i => SampleOrders.Create(5_200 + i)).ToList();
        var mixed = fresh.Chunk(4).SelectMany((four, i) => four.Prepend(stored[i])).ToList();
        Assert.Equal(mixed.Select(o => o.OrderId), await PostAcceptedAsync("/api/orders/batch", mixed, ct));

        Assert.Equal(fresh.Count, await StoredOrders.WaitForAsync(stack.Orders, [.. fresh.Select(o => o.OrderId)], ArrivalTimeout));
        await stack.WaitUntilQueuesDrainedAsync(ct);
        Assert.Equal(failedBefore, await stack.ReadyInPrivateQueueAsync(stack.Topology.ErrorQueue, ct));
        List<Guid> all = [.. stored.Concat(fresh).Select(o => o.OrderId)];
        Assert.Equal(all.Count, await StoredOrders.CountAsync(stack.Orders, "orders", all));
        Assert.Equal(stored.Concat(fresh).Sum(o => o.Items.Count), await StoredOrders.CountAsync(stack.Orders, "order_items", all));
        var rows = await StoredOrders.ReadAsync(stack.Orders, stack.ColumnKeys, [.. fresh.Select(o => o.OrderId)]);
        foreach (var order in fresh)
        {
            Assert.Equal(SampleOrders.Describe(order), SampleOrders.Describe(rows[order.OrderId].Order));
        }
    }

    [Fact]
    public async Task Each_order_is_stored_with_the_client_its_token_was_issued_to()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(5_004);

        Assert.Equal([order.OrderId], await PostAcceptedAsync("/api/orders", order, ct));

        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [order.OrderId], ArrivalTimeout));
        await using var command = stack.Orders.CreateCommand($"SELECT client_id FROM orders WHERE order_id = '{order.OrderId}'");
        Assert.Equal(TestTokens.DefaultClient, await command.ExecuteScalarAsync(ct));
    }

    [Fact]
    public async Task An_order_without_id_or_creation_time_gets_a_uuid_v7_and_the_time_it_was_accepted()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        var order = SampleOrders.Create(5_003) with { OrderId = Guid.Empty, CreatedAt = default };

        var id = Assert.Single(await PostAcceptedAsync("/api/orders", order, ct));

        Assert.Equal(7, id.Version);
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [id], ArrivalTimeout));
        var stored = (await StoredOrders.ReadAsync(stack.Orders, stack.ColumnKeys, [id]))[id].Order;
        Assert.InRange(stored.CreatedAt, before, DateTimeOffset.UtcNow.AddSeconds(1));
    }

    [Fact]
    public async Task An_invalid_order_gets_400_with_every_field_error_and_is_not_published()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        var invalid = SampleOrders.Create(6_001) with
        {
            Currency = "eur",
            Customer = new Customer { Name = "", Email = "not-an-email", Document = new string('9', 51) },
            Items = [new OrderItem { Sku = "A", Quantity = 0, UnitPrice = -1m }],
            Total = 10m,
        };

        using var response = await stack.Api.PostAsJsonAsync("/api/orders", invalid, WireFormat.Options, ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = await ErrorsAsync(response, ct);
        Assert.Equal(
            ["currency", "customer.document", "customer.email", "customer.name", "items[0].quantity", "items[0].unitPrice"],
            errors.Keys.Order(StringComparer.Ordinal));

        await AssertNeverStoredAsync(invalid.OrderId, ct);
    }

    [Fact]
    public async Task A_batch_with_one_invalid_order_is_refused_whole_with_the_errors_indexed()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        var good = SampleOrders.Create(6_101);
        var bad = SampleOrders.Create(6_102) with { Total = 0.01m };

        using var response = await stack.Api.PostAsJsonAsync("/api/orders/batch", new List<Order> { good, bad }, WireFormat.Options, ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(["[1].total"], (await ErrorsAsync(response, ct)).Keys);
        await AssertNeverStoredAsync(good.OrderId, ct);
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Orders, "orders", [bad.OrderId]));
    }

    [Theory]
    [InlineData("{\"customer\": ", "$")]
    [InlineData("{\"currency\": 12}", "$.currency")]
    [InlineData("{\"items\": [{\"quantity\": 1.5}]}", "$.items[0].quantity")]
    [InlineData("{\"unexpected\": true}", "$")]
    public async Task Malformed_json_gets_400_naming_where(string body, string path)
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        using var content = new StringContent(body, Encoding.UTF8, "application/json");

        using var response = await stack.Api.PostAsync(new Uri("/api/orders", UriKind.Relative), content, ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains((await ErrorsAsync(response, ct)).Keys, key => key.StartsWith(path, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_body_that_is_not_json_gets_415()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        using var content = new StringContent("currency=EUR", Encoding.UTF8, "application/x-www-form-urlencoded");

        using var response = await stack.Api.PostAsync(new Uri("/api/orders", UriKind.Relative), content, ct);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Poison_messages_go_to_the_error_queue_with_the_reason_and_do_not_block_the_others()
    {
        stack.SkipWhenUnavailable();
        var ct = TestContext.Current.CancellationToken;
        var now = DateTimeOffset.UtcNow;
        Envelope EnvelopeFor(Guid id, int version = 1) =>
            new(id, Orders.Type.WireType, version, now, "poison-test");

        var garbage = Guid.CreateVersion7();
        var oldSchema = SampleOrders.Create(7_001);
        var invalid = SampleOrders.Create(7_002) with { Total = 1m };
        await stack.PublishEncryptedAsync(EnvelopeFor(garbage), "{not json"u8.ToArray());
        await stack.PublishEncryptedAsync(EnvelopeFor(oldSchema.OrderId, version: 0), Orders.Type.Serialize(oldSchema));
        await stack.PublishEncryptedAsync(EnvelopeFor(invalid.OrderId), Orders.Type.Serialize(invalid));
        var good = SampleOrders.Create(7_003);
        await PostAcceptedAsync("/api/orders", good, ct);

        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [good.OrderId], ArrivalTimeout));
        await AssertDeadLetteredAsync(garbage, "not a valid order");
        await AssertDeadLetteredAsync(oldSchema.OrderId, "Unknown schema version 0");
        await AssertDeadLetteredAsync(invalid.OrderId, "total");
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Orders, "orders", [oldSchema.OrderId, invalid.OrderId]));
    }

    private async Task AssertDeadLetteredAsync(Guid messageId, string reasonContains)
    {
        var message = await stack.TakeFromErrorQueueAsync(m => m.BasicProperties.MessageId == messageId.ToString(), ArrivalTimeout);
        Assert.NotNull(message);
        var headers = message.BasicProperties.Headers!;
        var reason = Encoding.UTF8.GetString((byte[])headers[FailureHeaders.Reason]!);
        Assert.Contains(reasonContains, reason, StringComparison.Ordinal);
        Assert.Equal(stack.Topology.Queue, Encoding.UTF8.GetString((byte[])headers[FailureHeaders.OriginalQueue]!));
        Assert.True(headers.ContainsKey(FailureHeaders.FailedAt));
    }

    /// <summary>A rejected order never reaches the database: a valid order sent after it arrives, and it does not.</summary>
    private async Task AssertNeverStoredAsync(Guid orderId, CancellationToken ct)
    {
        var marker = SampleOrders.Create(Random.Shared.Next(100_000, 200_000));
        await PostAcceptedAsync("/api/orders", marker, ct);
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [marker.OrderId], ArrivalTimeout));
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Orders, "orders", [orderId]));
    }

    private async Task<Guid[]> PostAcceptedAsync<T>(string path, T body, CancellationToken ct)
    {
        using var response = await stack.Api.PostAsJsonAsync(path, body, WireFormat.Options, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {text}");
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("orderIds").EnumerateArray().Select(e => e.GetGuid()).ToArray();
    }

    private static async Task<Dictionary<string, string[]>> ErrorsAsync(HttpResponseMessage response, CancellationToken ct)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return json.RootElement.GetProperty("errors").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(e => e.GetString()!).ToArray());
    }
}
