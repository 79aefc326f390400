using System.Net;
using System.Net.Http.Json;
using Envio.Tests.Messaging;
using Envio.Tests.Observability;
using Envio.Tests.Support;

namespace Envio.Tests.Security;

/// <summary>
/// A batch costs its client one rate-limit token per object, not one per request: otherwise a client sends a
/// thousand times its rate as batches of 1,000. What is refused is refused whole, with 429 and Retry-After, and
/// none of it reaches the broker.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class BatchRateLimitTests(EnvioStack stack)
{
    [Fact(Timeout = 120_000)]
    public async Task A_batch_takes_a_token_per_object_and_one_the_client_cannot_pay_for_is_refused_whole()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        await using var api = await InProcessApi.ForAsync(stack, topology, ct,
        [
            KeyValuePair.Create<string, string?>("Envio:Api:RateLimit:Burst", "10"),
            KeyValuePair.Create<string, string?>("Envio:Api:RateLimit:RequestsPerSecond", "1"),
        ]);
        using var client = api.Client();

        using (var paid = await client.PostAsJsonAsync("/api/orders/batch", Batch(81_000, 6), WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, paid.StatusCode);
        }
        // Four or five tokens left (one may have come back meanwhile): six more objects are too many.
        using (var refused = await client.PostAsJsonAsync("/api/orders/batch", Batch(81_100, 6), WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.True(int.Parse(refused.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
            var problem = await refused.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(ct);
            Assert.Contains("one request per object", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
        // More objects than the client may ever send at once: refused, naming the setting.
        using (var tooLarge = await client.PostAsJsonAsync("/api/orders/batch", Batch(81_200, 11), WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, tooLarge.StatusCode);
            var problem = await tooLarge.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(ct);
            Assert.Contains("Envio:Api:RateLimit:Burst", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(6u, await stack.ReadyInPrivateQueueAsync(topology.Queue, ct));
    }

    private static List<Envio.Contracts.Orders.Order> Batch(int firstSeed, int count) =>
        [.. Enumerable.Range(firstSeed, count).Select(seed => SampleOrders.Create(seed))];
}
