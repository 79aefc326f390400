using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Envio.Contracts.Messaging;
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
    /// None of <paramref name="refused"/> was published: an order accepted after them is stored, the work queue is
    /// drained, and none of them has a row.
    /// </summary>
    public static async Task AssertNothingPublishedAsync(EnvioStack stack, IReadOnlyCollection<Guid> refused, CancellationToken ct)
    {
        var marker = SampleOrders.Create(Random.Shared.Next(300_000, 400_000));
        using (var response = await stack.Api.PostAsJsonAsync("/api/orders", marker, WireFormat.Options, ct))
        {
            await AcceptedIdsAsync(response, ct);
        }
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [marker.OrderId], ArrivalTimeout));
        var deadline = DateTime.UtcNow + ArrivalTimeout;
        while (await stack.ReadyMessagesAsync(stack.Topology.Queue) > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "The work queue did not drain.");
            await Task.Delay(200, ct);
        }
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", refused));
    }
}
