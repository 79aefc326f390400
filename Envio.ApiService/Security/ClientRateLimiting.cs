using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Security;

/// <summary>
/// One token bucket per client, so that one client flooding the API cannot starve the others, and a cap on each
/// client's requests in progress, so that one client's slow bodies cannot hold the API's memory and connections. A
/// client is who the token was issued to: <c>client_id</c> (OAuth client credentials), <c>azp</c> (OIDC), else <c>sub</c>.
/// </summary>
public static class ClientRateLimiting
{
    public const string PolicyName = "per-client";

    public static IHostApplicationBuilder AddClientRateLimiting(this IHostApplicationBuilder builder)
    {
        builder.Services.AddRateLimiter(options =>
        {
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            // Runs before the policy's bucket. Two limits in one: each client's requests in progress (on the endpoints
            // that require the policy, keyed like it), and each address's unauthenticated requests (everywhere: 401s
            // and the anonymous /health), which no client bucket counts.
            options.GlobalLimiter = PartitionedRateLimiter.CreateChained(
                PartitionedRateLimiter.Create<HttpContext, string>(context =>
                {
                    if (context.GetEndpoint()?.Metadata.GetMetadata<EnableRateLimitingAttribute>()?.PolicyName != PolicyName)
                    {
                        return RateLimitPartition.GetNoLimiter("");
                    }
                    var limits = context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value.RateLimit;
                    return RateLimitPartition.GetConcurrencyLimiter(ClientOf(context), _ => new ConcurrencyLimiterOptions
                    {
                        PermitLimit = Math.Max(1, limits.ConcurrentRequests),
                        QueueLimit = 0,
                    });
                }),
                PartitionedRateLimiter.Create<HttpContext, string>(context =>
                {
                    if (context.User.Identity?.IsAuthenticated == true)
                    {
                        return RateLimitPartition.GetNoLimiter("");
                    }
                    var limits = context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value.RateLimit;
                    return RateLimitPartition.GetTokenBucketLimiter("anonymous@" + context.Connection.RemoteIpAddress, _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = Math.Max(1, limits.AnonymousBurst),
                        TokensPerPeriod = Math.Max(1, limits.AnonymousRequestsPerSecond),
                        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    });
                }));
            // One token per request here; a batch takes one more per further object (ClientTokenBuckets).
            options.AddPolicy(PolicyName, context => RateLimitPartition.Get(ClientOf(context),
                client => context.RequestServices.GetRequiredService<ClientTokenBuckets>().For(client)));
            options.OnRejected = (rejected, _) => TooManyAsync(rejected.HttpContext, rejected.Lease);
        });
        builder.Services.AddSingleton<ClientTokenBuckets>();
        return builder;
    }

    /// <summary>429 with Retry-After (when the bucket has tokens again) as problem details.</summary>
    internal static async ValueTask TooManyAsync(HttpContext http, RateLimitLease lease, string? detail = null)
    {
        var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails =
            {
                Status = StatusCodes.Status429TooManyRequests,
                Title = "Too many requests from this client.",
                Detail = detail ?? $"Retry after {seconds} s. The limit is per client (Envio:Api:RateLimit).",
            },
        });
    }

    /// <summary>
    /// A batch of <paramref name="objects"/>: one token per object, the request's own included (taken by the
    /// middleware). Null when the client has them; else a 429 to answer.
    /// </summary>
    internal static IResult? ChargeBatch(HttpContext context, int objects)
    {
        if (objects <= 1)
        {
            return null;
        }
        var buckets = context.RequestServices.GetRequiredService<ClientTokenBuckets>();
        if (objects > buckets.Burst)
        {
            return Results.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests from this client.",
                detail: $"A batch costs one request per object: {objects} is more than this client may send at once (Envio:Api:RateLimit:Burst, {buckets.Burst}).");
        }
        var lease = buckets.TryTake(ClientOf(context), objects - 1);
        return lease.IsAcquired ? null : new TooMany(lease,
            $"A batch costs one request per object ({objects}); this client has fewer left. The limit is per client (Envio:Api:RateLimit).");
    }

    private sealed class TooMany(RateLimitLease lease, string detail) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            using (lease)
            {
                httpContext.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                await TooManyAsync(httpContext, lease, detail);
            }
        }
    }

    // The claim type is part of the key: a subject and a client of the same name are not one client.
    internal static string ClientOf(HttpContext context) =>
        ClientIdentity.Of(context.User) is { } client ? $"{client.Type}:{client.Value}" : "anonymous@" + context.Connection.RemoteIpAddress;
}
