using System.Net;
using System.Net.Http.Json;
using Envio.Messaging;
using Envio.Tests.Support;
using Npgsql;

namespace Envio.Tests.Security;

/// <summary>
/// Per-client rate limiting, and that the API's limits are configuration the AppHost passes on (Envio:Api): on a stack
/// of its own with a small bucket and a small body limit, one client flooding gets 429 with Retry-After while another
/// client still gets 202, and a body the default limit would accept gets 413.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class RateLimitTests
{
    private const int Burst = 5;
    private const int MaxOrderBodyBytes = 4_096;

    [Fact(Timeout = 300_000)]
    public async Task A_client_over_its_limit_gets_429_with_retry_after_while_another_client_is_still_served()
    {
        var ct = TestContext.Current.CancellationToken;
        var dataRoot = EnvioAppHost.NewDataRoot();
        await using (var app = await EnvioAppHost.StartAsync(dataRoot, ct,
            "--Envio:Api:RateLimit:RequestsPerSecond=1", $"--Envio:Api:RateLimit:Burst={Burst}",
            $"--Envio:Api:MaxOrderBodyBytes={MaxOrderBodyBytes}"))
        {
            using var flooder = app.ApiClient(TestTokens.Create(client: "flooder", scopes: [TestTokens.SendScope]));
            using var other = app.ApiClient(TestTokens.Create(client: "neighbour", scopes: [TestTokens.SendScope]));
            await using var database = NpgsqlDataSource.Create((await app.OwnerConnectionStringAsync(ct)));

            var limited = new List<Guid>();
            HttpResponseMessage? tooMany = null;
            for (var i = 0; i < Burst * 4 && tooMany is null; i++)
            {
                var order = SampleOrders.Create(900_000 + i);
                var response = await flooder.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    (tooMany, limited) = (response, [order.OrderId]);
                }
                else
                {
                    Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
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
            }

            // The configured body limit, not the default one: 413 for a body the default 1 MiB would let through.
            var padded = Orders.Type.Serialize(SampleOrders.Create(902_000)).AsEnumerable().Prepend((byte)' ');
            using var large = new ByteArrayContent([.. Enumerable.Repeat((byte)' ', MaxOrderBodyBytes), .. padded]);
            large.Headers.ContentType = new("application/json");
            using var third = app.ApiClient(TestTokens.Create(client: "third", scopes: [TestTokens.SendScope])); // the neighbour's bucket is spent
            using (var tooLarge = await third.PostAsync(new Uri("/api/orders", UriKind.Relative), large, ct))
            {
                var problem = await HostileInputChecks.AssertProblemAsync(tooLarge, HttpStatusCode.RequestEntityTooLarge, ct);
                Assert.Contains("Envio:Api:MaxOrderBodyBytes", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            }

            Assert.Equal(Burst, await StoredOrders.WaitForAsync(database, [.. neighbours.Select(o => o.OrderId)], TimeSpan.FromSeconds(60)));
            Assert.Equal(0, await StoredOrders.CountAsync(database, "orders", limited));
        }
        Directory.Delete(dataRoot, recursive: true);
    }
}
