using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// 202 only for what the broker confirmed: a broker that refuses (a full queue nacks) or is gone gets 503 with
/// Retry-After naming the order ids (those the API assigned too), and nothing refused is stored later, except once
/// when the client resends it with those ids. This stack is its own: the test stops resources.
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
        await using var database = Npgsql.NpgsqlDataSource.Create((await app.OwnerConnectionStringAsync(ct)));

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
        Assert.Equal([refused!.OrderId], await AssertServiceUnavailableAsync(refusal, "nack", ct));

        // The broker gone: 503 as well, naming the id the API gave an order sent without one.
        await StopAsync(app, "messaging", ct);
        var whileDown = SampleOrders.Create(9_200) with { OrderId = Guid.Empty };
        var assigned = Assert.Single(await AssertServiceUnavailableAsync(await PostAsync(api, whileDown, ct), "unreachable", ct));
        Assert.NotEqual(Guid.Empty, assigned);

        // Broker and consumer back: the API publishes again by itself, and exactly the confirmed orders are stored.
        await StartAsync(app, "messaging", ct);
        await StartAsync(app, "consumer", ct);
        var after = SampleOrders.Create(9_300);
        await RetryUntilAcceptedAsync(api, after, ct);
        // The client resends the refused order with the id the 503 named, twice (as a client unsure of the first).
        await RetryUntilAcceptedAsync(api, whileDown with { OrderId = assigned }, ct);
        await RetryUntilAcceptedAsync(api, whileDown with { OrderId = assigned }, ct);

        Guid[] confirmed = [.. queued.Select(o => o.OrderId), after.OrderId, assigned];
        Assert.Equal(confirmed.Length, await StoredOrders.WaitForAsync(database, confirmed, TimeSpan.FromSeconds(60)));
        Assert.Equal(0, await StoredOrders.CountAsync(database, "orders", [refused.OrderId]));
        Assert.Equal(1, await StoredOrders.CountAsync(database, "orders", [assigned]));
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient api, Order order, CancellationToken ct) =>
        api.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);

    /// <summary>Checks the 503 and returns the order ids it names (the ones to resend with).</summary>
    private static async Task<Guid[]> AssertServiceUnavailableAsync(HttpResponseMessage response, string reason, CancellationToken ct)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode}: {body}");
            Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, "Retry-After is missing");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(reason, body, StringComparison.OrdinalIgnoreCase);
            using var problem = JsonDocument.Parse(body);
            Assert.True(problem.RootElement.TryGetProperty("orderIds", out var ids), $"the 503 does not name the order ids: {body}");
            return [.. ids.EnumerateArray().Select(id => id.GetGuid())];
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
