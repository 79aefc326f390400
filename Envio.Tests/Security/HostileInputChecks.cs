using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Envio.Contracts;
using Envio.Messaging;
using Envio.Tests.Support;

namespace Envio.Tests.Security;

/// <summary>What the security tests assert on: the answer a caller sees, and that nothing refused was published.</summary>
internal static class HostileInputChecks
{
    private static readonly TimeSpan ArrivalTimeout = TimeSpan.FromSeconds(60);

    /// <summary>A client of the shared stack's API with this token (or none), without retries: every answer counts.</summary>
    public static HttpClient Client(EnvioStack stack, string? token) => new()
    {
        BaseAddress = stack.Api.BaseAddress,
        DefaultRequestHeaders = { Authorization = token is null ? null : new AuthenticationHeaderValue("Bearer", token) },
    };

    public static Task<HttpResponseMessage> PostJsonAsync(HttpClient client, string path, string json, CancellationToken ct) =>
        client.PostAsync(new Uri(path, UriKind.Relative), new StringContent(json, System.Text.Encoding.UTF8, "application/json"), ct);

    /// <summary>Asserts an RFC 9457 problem with this status; returns its JSON.</summary>
    public static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, CancellationToken ct)
    {
        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(body);
        Assert.Equal((int)status, json.RootElement.GetProperty("status").GetInt32());
        return json.RootElement.Clone();
    }

    /// <summary>The ids a 202 names.</summary>
    public static async Task<Guid[]> AcceptedIdsAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {text}");
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("orderIds").EnumerateArray().Select(e => e.GetGuid()).ToArray();
    }

    /// <summary>
    /// A tap on what the API publishes from now on: a queue of the test's own bound beside every type's work queue, so
    /// that it receives a copy of each message the API publishes, and no consumer takes them. It counts exactly (the
    /// messages themselves), where the broker's queue totals lag by a statistics tick. It expires unused after ten
    /// minutes, should a test end before reading it.
    /// </summary>
    public sealed record StackTotals(string Tap)
    {
        public static async Task<StackTotals> TakeAsync(EnvioStack stack, CancellationToken ct)
        {
            var tap = $"{stack.Topology.Queue}.test-tap.{Guid.NewGuid():N}"; // a name the administrator's permissions cover
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            await channel.QueueDeclareAsync(tap, durable: false, exclusive: false, autoDelete: false,
                new Dictionary<string, object?> { ["x-expires"] = (int)TimeSpan.FromMinutes(10).TotalMilliseconds }, cancellationToken: ct);
            foreach (var type in DataObjectTypes.Registered)
            {
                var names = stack.Topology.NamesOf(type);
                await channel.QueueBindAsync(tap, names.Exchange, names.RoutingKey, cancellationToken: ct);
            }
            return new StackTotals(tap);
        }

        /// <summary>
        /// The message ids of every copy the tap received, and the tap deleted. Copies that a retry queue dead-lettered
        /// back (an earlier test's retries coming round) carry <c>x-death</c> and are no publish of the API's.
        /// </summary>
        public async Task<List<string>> TakePublishedAsync(EnvioStack stack, CancellationToken ct)
        {
            var published = new List<string>();
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            while (await channel.BasicGetAsync(Tap, autoAck: true, ct) is { } message)
            {
                if (message.BasicProperties.Headers?.ContainsKey("x-death") != true)
                {
                    published.Add(message.BasicProperties.MessageId ?? "(no id)");
                }
            }
            await channel.QueueDeleteAsync(Tap, ifUnused: false, ifEmpty: false, cancellationToken: ct);
            return published;
        }
    }

    /// <summary>
    /// Nothing refused was published, whatever the body held (an order id or none): an order accepted after them (the
    /// marker) is stored, and then the tap taken in <paramref name="before"/> holds exactly <paramref name="accepted"/>
    /// publishes and the marker's, all of them stored, and none of the ids seen in refused bodies has a row. The
    /// API confirms each publish before it answers, so a body published and then refused is in the tap before the
    /// refusal arrives.
    /// </summary>
    public static async Task AssertPublishedOnlyAsync(
        EnvioStack stack, StackTotals before, long accepted, IReadOnlyCollection<Guid> refused, CancellationToken ct)
    {
        var marker = SampleOrders.Create(Random.Shared.Next(300_000, 400_000));
        using (var response = await stack.Api.PostAsJsonAsync("/api/orders", marker, WireFormat.Options, ct))
        {
            await AcceptedIdsAsync(response, ct);
        }
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [marker.OrderId], ArrivalTimeout));
        var published = await before.TakePublishedAsync(stack, ct);

        // Distinct ids: an order accepted twice (a client's retry) is published twice under one id.
        var distinct = published.Distinct(StringComparer.Ordinal).ToList();
        Assert.True(distinct.Count == accepted + 1 && distinct.Contains(marker.OrderId.ToString()),
            $"expected {accepted} accepted order(s) and the marker {marker.OrderId} to be published; published: {string.Join(", ", published)}");
        var ids = distinct.Select(id => Guid.TryParse(id, out var guid) ? guid : Guid.Empty).ToList();
        Assert.Equal(distinct.Count, await StoredOrders.WaitForAsync(stack.Orders, ids, ArrivalTimeout));
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Orders, "orders", refused));
    }

    /// <summary>Nothing was published: <see cref="AssertPublishedOnlyAsync"/> with no order accepted.</summary>
    public static Task AssertNothingPublishedAsync(EnvioStack stack, StackTotals before, IReadOnlyCollection<Guid> refused, CancellationToken ct) =>
        AssertPublishedOnlyAsync(stack, before, accepted: 0, refused, ct);
}
