using System.Net;
using System.Net.Http.Json;
using Envio.Tests.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Envio.Tests.Security;

/// <summary>
/// Traffic without a valid token has limits too: no client bucket counts it, so each address gets one
/// (Envio:Api:RateLimit:AnonymousRequestsPerSecond, :AnonymousBurst); and the anonymous /health reuses a result for
/// 2 s instead of running every check (a broker channel, a query) for each caller.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class AnonymousTrafficTests(EnvioStack stack)
{
    [Fact(Timeout = 120_000)]
    public async Task Requests_without_a_valid_token_are_limited_per_address_and_clients_with_one_are_still_served()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await InProcessApi.ForAsync(stack, Topologies.Private(), ct,
        [
            KeyValuePair.Create<string, string?>("Envio:Api:RateLimit:AnonymousBurst", "5"),
            KeyValuePair.Create<string, string?>("Envio:Api:RateLimit:AnonymousRequestsPerSecond", "1"),
        ]);
        using var anonymous = api.CreateClient();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 10; i++)
        {
            using var response = await anonymous.PostAsJsonAsync("/api/orders", SampleOrders.Create(82_000 + i), WireFormat.Options, ct);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.True(response.Headers.Contains("Retry-After"));
            }
        }
        Assert.Equal(HttpStatusCode.Unauthorized, statuses[0]);
        Assert.True(statuses.Count(s => s == HttpStatusCode.TooManyRequests) >= 4, string.Join(", ", statuses));

        using var client = api.Client();
        using var served = await client.PostAsJsonAsync("/api/orders", SampleOrders.Create(82_100), WireFormat.Options, ct);
        Assert.Equal(HttpStatusCode.Accepted, served.StatusCode);
    }

    [Fact(Timeout = 120_000)]
    public async Task Health_runs_its_checks_once_for_a_burst_of_callers()
    {
        var ct = TestContext.Current.CancellationToken;
        var runs = 0;
        await using var stackApi = await InProcessApi.ForAsync(stack, Topologies.Private(), ct);
        await using var api = stackApi.WithWebHostBuilder(builder => builder.ConfigureTestServices(services =>
            services.AddHealthChecks().AddCheck("counted", () =>
            {
                Interlocked.Increment(ref runs);
                return HealthCheckResult.Healthy();
            })));
        using var anonymous = api.CreateClient();
        // Healthy once the API declared the topology; then a fresh start for the count, past the result kept so far.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        HttpStatusCode status;
        do
        {
            using var probe = await anonymous.GetAsync("/health", ct);
            status = probe.StatusCode;
            if (status != HttpStatusCode.OK)
            {
                await Task.Delay(500, ct);
            }
        }
        while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline);
        Assert.Equal(HttpStatusCode.OK, status);
        await Task.Delay(TimeSpan.FromSeconds(2.2), ct);
        Volatile.Write(ref runs, 0);

        var answers = await Task.WhenAll(Enumerable.Range(0, 30).Select(async _ =>
        {
            using var response = await anonymous.GetAsync("/health", ct);
            return response.StatusCode;
        }));

        Assert.All(answers, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.InRange(runs, 1, 2); // the burst took well under the 2 s a result is kept (2: it straddled an expiry)
    }
}
