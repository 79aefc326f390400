using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using static Envio.Tests.Security.HostileInputChecks;

namespace Envio.Tests.Security;

/// <summary>
/// Ten thousand generated and mutated bodies against the shared stack: no 5xx, only the statuses a client can act on,
/// nothing published for a refused body (the tables grow by the accepted orders exactly, no queue keeps a message, and
/// a refused body's order ids appear nowhere), every accepted body valid by the contract and stored as sent, and the
/// API healthy afterwards. The seed is printed;
/// <c>ENVIO_FUZZ_SEED</c> replays one.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed partial class FuzzTests(EnvioStack stack)
{
    private const int Bodies = 10_000;
    private const int DefaultSeed = 20_261_127;
    private static readonly HttpStatusCode[] Allowed =
        [HttpStatusCode.Accepted, HttpStatusCode.BadRequest, HttpStatusCode.RequestEntityTooLarge, HttpStatusCode.UnsupportedMediaType];

    [GeneratedRegex("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")]
    private static partial Regex GuidPattern();

    [Fact(Timeout = 600_000)]
    public async Task Ten_thousand_mutated_bodies_get_no_5xx_publish_nothing_refused_and_leave_the_api_healthy()
    {
        var ct = TestContext.Current.CancellationToken;
        var seed = Environment.GetEnvironmentVariable("ENVIO_FUZZ_SEED") is { Length: > 0 } given
            ? int.Parse(given, CultureInfo.InvariantCulture) : DefaultSeed;
        var fuzz = new FuzzBodies(seed);
        var bodies = Enumerable.Range(0, Bodies).Select(fuzz.Next).ToArray();
        var answers = new (HttpStatusCode Status, string Text)[Bodies];
        using var client = Client(stack, TestTokens.Create(client: "fuzzer", scopes: [TestTokens.SendScope]));

        var before = await StackTotals.TakeAsync(stack, ct);
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, Bodies), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct },
            async (i, token) =>
            {
                using var content = new ByteArrayContent(bodies[i].Body);
                content.Headers.ContentType = MediaTypeHeaderValue.Parse(bodies[i].ContentType);
                using var response = await client.PostAsync(new Uri(bodies[i].Path, UriKind.Relative), content, token);
                answers[i] = (response.StatusCode, await response.Content.ReadAsStringAsync(token));
            });
        var sent = clock.Elapsed;

        var statuses = answers.GroupBy(a => a.Status).ToDictionary(g => g.Key, g => g.Count());
        var summary = $"fuzz seed {seed}: {Bodies} bodies in {sent.TotalSeconds:0.0} s; " +
            string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}"));
        TestContext.Current.TestOutputHelper?.WriteLine(summary);
        Directory.CreateDirectory(Path.Combine(Repository.Root, "TestResults"));
        await File.WriteAllTextAsync(Path.Combine(Repository.Root, "TestResults", "fuzz.txt"), summary + Environment.NewLine, ct);

        var unexpected = Enumerable.Range(0, Bodies).Where(i => !Allowed.Contains(answers[i].Status)).ToList();
        Assert.True(unexpected.Count == 0, $"seed {seed}: {unexpected.Count} answers outside {string.Join('/', Allowed.Select(s => (int)s))}, e.g.\n" +
            string.Join("\n", unexpected.Take(5).Select(i =>
                $"{(int)answers[i].Status} for [{bodies[i].Mutations}] {bodies[i].Path} {Preview(bodies[i].Body)} → {answers[i].Text}")));
        Assert.True(statuses.GetValueOrDefault(HttpStatusCode.Accepted) > 100, "the fuzz barely produced valid bodies");
        Assert.True(statuses.GetValueOrDefault(HttpStatusCode.BadRequest) > 1_000, "the fuzz barely produced invalid bodies");
        Assert.True(statuses.GetValueOrDefault(HttpStatusCode.RequestEntityTooLarge) > 0, "the fuzz produced no oversized body");

        // Every refusal was a problem document.
        Assert.All(Enumerable.Range(0, Bodies).Where(i => answers[i].Status != HttpStatusCode.Accepted),
            i => Assert.Equal((int)answers[i].Status, JsonDocument.Parse(answers[i].Text).RootElement.GetProperty("status").GetInt32()));

        var accepted = Enumerable.Range(0, Bodies).Where(i => answers[i].Status == HttpStatusCode.Accepted)
            .SelectMany(i => JsonDocument.Parse(answers[i].Text).RootElement.GetProperty("orderIds").EnumerateArray().Select(e => e.GetGuid()))
            .ToHashSet();
        var refused = Enumerable.Range(0, Bodies).Where(i => answers[i].Status != HttpStatusCode.Accepted)
            .SelectMany(i => GuidPattern().Matches(Encoding.UTF8.GetString(bodies[i].Body)).Select(m => Guid.Parse(m.Value)))
            .Where(id => !accepted.Contains(id))
            .ToHashSet();

        Assert.Equal(accepted.Count, await StoredOrders.WaitForAsync(stack.Database, accepted, TimeSpan.FromMinutes(2)));
        // The table grew by exactly the accepted orders and no queue kept anything: a refused body published nothing,
        // whether or not it held an order id.
        await AssertPublishedOnlyAsync(stack, before, accepted.Count, refused, ct);
        await AssertAcceptedAreValidAndStoredAsSentAsync(bodies, answers, ct);
        using (var errors = await stack.Api.GetAsync(new Uri("/admin/errors?limit=500", UriKind.Relative), ct))
        {
            var page = await errors.Content.ReadAsStringAsync(ct);
            Assert.Equal(HttpStatusCode.OK, errors.StatusCode);
            Assert.DoesNotContain(GuidPattern().Matches(page).Select(m => Guid.Parse(m.Value)), refused.Contains);
        }

        using var anonymous = Client(stack, null);
        Assert.Equal("Healthy", await anonymous.GetStringAsync(new Uri("/health", UriKind.Relative), ct));
    }

    /// <summary>
    /// Every accepted body is what the contract allows (<see cref="OrderValidator"/> finds nothing in it) and each of
    /// its orders is stored as it was sent, under the id the answer names (the API's own where the body had none).
    /// </summary>
    private async Task AssertAcceptedAreValidAndStoredAsSentAsync(FuzzBody[] bodies, (HttpStatusCode Status, string Text)[] answers, CancellationToken ct)
    {
        var sent = new Dictionary<Guid, Order>();
        foreach (var i in Enumerable.Range(0, bodies.Length).Where(i => answers[i].Status == HttpStatusCode.Accepted))
        {
            var orders = bodies[i].Path.EndsWith("/batch", StringComparison.Ordinal)
                ? JsonSerializer.Deserialize<List<Order>>(bodies[i].Body, WireFormat.Options)!
                : [JsonSerializer.Deserialize<Order>(bodies[i].Body, WireFormat.Options)!];
            var ids = JsonDocument.Parse(answers[i].Text).RootElement.GetProperty("orderIds").EnumerateArray().Select(e => e.GetGuid()).ToList();
            Assert.Equal(orders.Count, ids.Count);
            for (var k = 0; k < orders.Count; k++)
            {
                Assert.True(orders[k].OrderId == Guid.Empty || orders[k].OrderId == ids[k], $"the answer names {ids[k]} for order {orders[k].OrderId}");
                // What the API publishes: the order with its id (the API's own where the body had none) and a creation
                // time (the time it was accepted, where the body had none).
                var completed = orders[k] with
                {
                    OrderId = ids[k],
                    CreatedAt = orders[k].CreatedAt == default ? DateTimeOffset.UtcNow : orders[k].CreatedAt,
                };
                var errors = OrderValidator.Validate(completed);
                Assert.True(errors.Count == 0, $"accepted [{bodies[i].Mutations}] {Preview(bodies[i].Body)} breaks the contract: " +
                    string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")));
                sent[ids[k]] = orders[k] with { OrderId = ids[k] };
            }
        }
        var stored = await StoredOrders.ReadAsync(stack.Orders, stack.ColumnKeys, sent.Keys);
        Assert.Equal(sent.Count, stored.Count);
        foreach (var (id, order) in sent)
        {
            var kept = stored[id].Order;
            // An order sent without a creation time gets the time it was accepted.
            var expected = order.CreatedAt == default ? order with { CreatedAt = kept.CreatedAt } : order;
            Assert.Equal(SampleOrders.Describe(expected), SampleOrders.Describe(kept));
        }
    }

    private static string Preview(byte[] body) =>
        body.Length <= 300 ? Encoding.UTF8.GetString(body) : Encoding.UTF8.GetString(body, 0, 300) + $"… ({body.Length} bytes)";
}
