using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
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
    /// What the stack holds while nothing moves: every order row, and the work, retry and error queues' messages,
    /// ready and unacknowledged. Taken once the queues have drained.
    /// </summary>
    public sealed record StackTotals(long Orders, IReadOnlyDictionary<string, QueueCount> Queues)
    {
        public static async Task<StackTotals> TakeAsync(EnvioStack stack, CancellationToken ct)
        {
            var queues = await stack.WaitUntilQueuesDrainedAsync(ct);
            return new StackTotals(await StoredOrders.CountAllAsync(stack.Orders), queues);
        }

        public override string ToString() =>
            $"{Orders} orders; " + string.Join(", ", Queues.Select(q => $"{q.Key} {q.Value.Ready}+{q.Value.Unacknowledged}"));
    }

    /// <summary>
    /// Nothing refused was published, whatever the body held (an order id or none): an order accepted after them is
    /// stored and the queues drain, and then the table holds exactly <paramref name="accepted"/> orders (and the marker)
    /// more than <paramref name="before"/>, every queue holds what it held (the error queue too), and none of the ids
    /// seen in refused bodies has a row. The tests run alone on the shared stack (one collection), so no other test
    /// moves these totals meanwhile.
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
        var after = await StackTotals.TakeAsync(stack, ct);

        Assert.True(before.Orders + accepted + 1 == after.Orders,
            $"expected {accepted} accepted order(s) and the marker to be stored; before: {before}; after: {after}");
        foreach (var (queue, count) in before.Queues)
        {
            Assert.True(count.Total == after.Queues[queue].Total, $"{queue} changed; before: {before}; after: {after}");
        }
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Orders, "orders", refused));
    }

    /// <summary>Nothing was published: <see cref="AssertPublishedOnlyAsync"/> with no order accepted.</summary>
    public static Task AssertNothingPublishedAsync(EnvioStack stack, StackTotals before, IReadOnlyCollection<Guid> refused, CancellationToken ct) =>
        AssertPublishedOnlyAsync(stack, before, accepted: 0, refused, ct);
}
