using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using Envio.ApiService.Endpoints;
using Envio.Tests.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.Tests.Security;

/// <summary>
/// One budget of request-body bytes across every client (Envio:Api:MaxBodyBytesInFlight): each client's concurrency
/// cap alone let a few clients' large batches fill the API's memory. A request that finds it spent waits briefly, then
/// gets 503 with Retry-After; once the bodies in hand are done, requests are served again.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class BodyBudgetTests(EnvioStack stack)
{
    private const int Budget = 1024 * 1024;

    [Fact(Timeout = 120_000)]
    public async Task A_body_beyond_the_budget_waits_briefly_then_gets_503_with_Retry_After_and_is_served_once_the_budget_is_free()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await InProcessApi.ForAsync(stack, Topologies.Private(), ct,
        [
            KeyValuePair.Create<string, string?>("Envio:Api:MaxBodyBytesInFlight", Budget.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            KeyValuePair.Create<string, string?>("Envio:Api:BodyBudgetWait", "00:00:00.300"),
        ]);
        // Kestrel, not the test server: a body must reach the API while it is still arriving.
        api.UseKestrel(0);
        api.StartServer();
        using var client = api.Client();
        var budget = api.Services.GetRequiredService<BodyBudget>();

        // Another client's batch declaring the whole budget, whose body is still arriving.
        using var slow = new TcpClient();
        await slow.ConnectAsync(client.BaseAddress!.Host, client.BaseAddress.Port, ct);
        var stream = slow.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /api/orders/batch HTTP/1.1\r\nHost: {client.BaseAddress.Authority}\r\n" +
            $"Authorization: Bearer {TestTokens.Create(client: "large-batches", scopes: [TestTokens.SendScope])}\r\n" +
            $"Content-Type: application/json\r\nContent-Length: {Budget}\r\n\r\n["), ct);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (budget.AvailableBytes > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, ct);
        }
        Assert.Equal(0, budget.AvailableBytes);

        using (var refused = await client.PostAsJsonAsync("/api/orders", SampleOrders.Create(80_001), WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
            var problem = await refused.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(ct);
            Assert.Contains("MaxBodyBytesInFlight", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        // The rest of the batch (an empty array, padded): read whole and answered, its share given back.
        var rest = new byte[Budget - 1];
        Array.Fill(rest, (byte)' ');
        rest[^1] = (byte)']';
        await stream.WriteAsync(rest, ct);
        var answer = new byte[64];
        var read = await stream.ReadAsync(answer, ct);
        Assert.StartsWith("HTTP/1.1 400", Encoding.ASCII.GetString(answer, 0, read), StringComparison.Ordinal);

        using var served = await client.PostAsJsonAsync("/api/orders", SampleOrders.Create(80_002), WireFormat.Options, ct);
        Assert.Equal(HttpStatusCode.Accepted, served.StatusCode);
        Assert.Equal(Budget, budget.AvailableBytes);
    }
}
