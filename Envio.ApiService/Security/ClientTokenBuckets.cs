using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Security;

/// <summary>
/// Each client's token bucket (<see cref="ApiOptions.RateLimitOptions"/>), kept here so that a request can take more
/// than the one token the rate-limiting middleware takes at its start: a batch costs one token per object, so that a
/// client cannot send a thousand times its rate as batches. The middleware's policy hands out these same buckets.
/// </summary>
public sealed class ClientTokenBuckets(IOptions<ApiOptions> options) : IDisposable
{
    private readonly ConcurrentDictionary<string, TokenBucketRateLimiter> _buckets = new(StringComparer.Ordinal);

    public int Burst => Math.Max(1, options.Value.RateLimit.Burst);

    /// <summary>The bucket of <paramref name="client"/>, wrapped so that the middleware never disposes it when it idles.</summary>
    public RateLimiter For(string client) => new Shared(Bucket(client));

    /// <summary>Takes <paramref name="tokens"/> more from the client's bucket, at once or not at all.</summary>
    public RateLimitLease TryTake(string client, int tokens) => Bucket(client).AttemptAcquire(Math.Min(tokens, Burst));

    private TokenBucketRateLimiter Bucket(string client) => _buckets.GetOrAdd(client, _ => new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
    {
        TokenLimit = Burst,
        TokensPerPeriod = Math.Max(1, options.Value.RateLimit.RequestsPerSecond),
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    }));

    public void Dispose()
    {
        foreach (var bucket in _buckets.Values)
        {
            bucket.Dispose();
        }
    }

    /// <summary>The bucket as the middleware sees it: never idle (so never disposed by it), disposed with <see cref="ClientTokenBuckets"/>.</summary>
    private sealed class Shared(TokenBucketRateLimiter bucket) : RateLimiter
    {
        public override TimeSpan? IdleDuration => null;

        public override RateLimiterStatistics? GetStatistics() => bucket.GetStatistics();

        protected override RateLimitLease AttemptAcquireCore(int permitCount) => bucket.AttemptAcquire(permitCount);

        protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
            bucket.AcquireAsync(permitCount, cancellationToken);
    }
}
