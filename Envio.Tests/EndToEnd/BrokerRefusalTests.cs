using System.Net;
using System.Net.Http.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.Contracts.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// 202 only for what the broker confirmed: a broker that refuses (a full queue nacks) or is gone gets 503 with
/// Retry-After, and nothing refused is stored later. This stack is its own: the test stops resources.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class BrokerRefusalTests
{
    private const int QueueBound = 3;

    [Fact(Timeout = 300_000)]
    public async Task Nacked_or_unreachable_publishes_get_503_with_retry_after_and_the_api_recovers_with_the_broker()
    {
        var ct = TestContext.Current.CancellationToken;
        var dataRoot = EnvioAppHost.NewDataRoot();
        await using var app = await EnvioAppHost.StartAsync(dataRoot, ct, $"--Envio:Topology:MaxLength={QueueBound}");
        using var api = app.ApiClient(); // no retries: see every answer
        await using var database = Npgsql.NpgsqlDataSource.Create((await app.GetConnectionStringAsync("enviodb", ct))!);

        // With the consumer stopped, the bounded queue fills up and the broker nacks what comes next. (A quorum
        // queue notices that it is over its bound a moment late: it may take one more before it refuses.)
        await StopAsync(app, "consumer", ct);
        var queued = new List<Order>();
        HttpResponseMessage? refusal = null;
        Order? refused = null;
        for (var i = 1; refusal is null && i <= QueueBound + 5; i++)
        {
            var order = SampleOrders.Create(9_000 + i);
            var response = await PostAsync(api, order, ct);
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                queued.Add(order);
                response.Dispose();
            }
            else
            {
                (refusal, refused) = (response, order);
            }
        }
        Assert.NotNull(refusal);
        Assert.InRange(queued.Count, QueueBound, QueueBound + 1);
        await AssertServiceUnavailableAsync(refusal, "nack", ct);

        // The broker gone: 503 as well.
        await StopAsync(app, "messaging", ct);
        var whileDown = SampleOrders.Create(9_200);
        await AssertServiceUnavailableAsync(await PostAsync(api, whileDown, ct), "unreachable", ct);

        // Broker and consumer back: the API publishes again by itself, and exactly the confirmed orders are stored.
        await StartAsync(app, "messaging", ct);
        await StartAsync(app, "consumer", ct);
        var after = SampleOrders.Create(9_300);
        await RetryUntilAcceptedAsync(api, after, ct);

        Guid[] confirmed = [.. queued.Select(o => o.OrderId), after.OrderId];
        Assert.Equal(confirmed.Length, await StoredOrders.WaitForAsync(database, confirmed, TimeSpan.FromSeconds(60)));
        Assert.Equal(0, await StoredOrders.CountAsync(database, "orders", [refused!.OrderId, whileDown.OrderId]));
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient api, Order order, CancellationToken ct) =>
        api.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);

    private static async Task AssertServiceUnavailableAsync(HttpResponseMessage response, string reason, CancellationToken ct)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode}: {body}");
            Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, "Retry-After is missing");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(reason, body, StringComparison.OrdinalIgnoreCase);
        }
    }

    private static async Task RetryUntilAcceptedAsync(HttpClient api, Order order, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            using var response = await PostAsync(api, order, ct);
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                return;
            }
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.True(DateTime.UtcNow < deadline, "The API did not accept orders again after the broker came back.");
            await Task.Delay(1_000, ct);
        }
    }

    /// <summary>
    /// Stops a resource the way an operator's SIGTERM would. (DCP's own stop command sends SIGINT to the
    /// <c>dotnet run</c> wrapper of a project, which does not pass it on.)
    /// </summary>
    private static Task StopAsync(DistributedApplication app, string name, CancellationToken ct) =>
        ResourceProcesses.SignalAsync(app, name, "TERM", ct);

    private static Task StartAsync(DistributedApplication app, string name, CancellationToken ct) =>
        ResourceProcesses.RestartAsync(app, name, ct);
}
