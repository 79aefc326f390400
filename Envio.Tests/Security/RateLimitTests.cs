using System.Net;
using System.Net.Http.Json;
using Envio.Messaging;
using Envio.Tests.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;

namespace Envio.Tests.Security;

/// <summary>
/// Per-client rate limiting: with a small bucket and a small body limit, one client flooding gets 429 with Retry-After
/// while another client still gets 202, and a body the default limit would accept gets 413. The real API runs
/// in-process on the shared stack's broker with a private topology, so what it published is exactly what its queue
/// holds. (That the AppHost hands Envio:Api settings to the API process is shown by ApiHardeningTests' cap.)
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class RateLimitTests(EnvioStack stack)
{
    private const int Burst = 5;
    private const int MaxOrderBodyBytes = 4_096;

    [Fact(Timeout = 300_000)]
    public async Task A_client_over_its_limit_gets_429_with_retry_after_while_another_client_is_still_served()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        await using var api = await InProcessApi.ForAsync(stack, topology, ct,
        [
            KeyValuePair.Create<string, string?>("Envio:Api:RateLimit:RequestsPerSecond", "1"),
            KeyValuePair.Create<string, string?>("Envio:Api:RateLimit:Burst", $"{Burst}"),
            KeyValuePair.Create<string, string?>("Envio:Api:MaxOrderBodyBytes", $"{MaxOrderBodyBytes}"),
        ]);
        try
        {
            using var flooder = ClientOf(api, "flooder");
            using var other = ClientOf(api, "neighbour");

            // Up to four bursts' worth: a machine slow enough to refill a token per request still runs dry.
            var published = new List<Guid>();
            HttpResponseMessage? tooMany = null;
            for (var i = 0; i < Burst * 4 && tooMany is null; i++)
            {
                var order = SampleOrders.Create(900_000 + i);
                var response = await flooder.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    tooMany = response;
                }
                else
                {
                    Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                    published.Add(order.OrderId);
                    response.Dispose();
                }
            }

            Assert.NotNull(tooMany);
            using (tooMany)
            {
                var problem = await HostileInputChecks.AssertProblemAsync(tooMany, HttpStatusCode.TooManyRequests, ct);
                Assert.True(tooMany.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After is missing");
                Assert.Contains("Envio:Api:RateLimit", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            // A whole burst of the other client's, at once: a bucket shared with the flooder (or one refill) could not
            // serve five in a row.
            var neighbours = Enumerable.Range(0, Burst).Select(i => SampleOrders.Create(901_000 + i)).ToList();
            foreach (var neighbour in neighbours)
            {
                using var served = await other.PostAsJsonAsync("/api/orders", neighbour, WireFormat.Options, ct);
                Assert.Equal(HttpStatusCode.Accepted, served.StatusCode);
                published.Add(neighbour.OrderId);
            }

            // The configured body limit, not the default one: 413 for a body the default 1 MiB would let through.
            var padded = Orders.Type.Serialize(SampleOrders.Create(902_000)).AsEnumerable().Prepend((byte)' ');
            using var large = new ByteArrayContent([.. Enumerable.Repeat((byte)' ', MaxOrderBodyBytes), .. padded]);
            large.Headers.ContentType = new("application/json");
            using var third = ClientOf(api, "third"); // the neighbour's bucket is spent
            using (var tooLarge = await third.PostAsync(new Uri("/api/orders", UriKind.Relative), large, ct))
            {
                var problem = await HostileInputChecks.AssertProblemAsync(tooLarge, HttpStatusCode.RequestEntityTooLarge, ct);
                Assert.Contains("Envio:Api:MaxOrderBodyBytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            // Exactly what was answered 202 reached the broker: not the refused order, not the oversized one.
            Assert.Equal(published.Order(), (await BrokerQueues.TakeIdsAsync(stack.Broker, topology.Queue, ct)).Order());
        }
        finally
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    private static HttpClient ClientOf(InProcessApi api, string client)
    {
        var http = api.CreateClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", TestTokens.Create(client: client, scopes: [TestTokens.SendScope]));
        return http;
    }
}
