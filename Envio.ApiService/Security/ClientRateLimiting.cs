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
            // Runs before the policy's bucket, on the same endpoints (those that require the policy), with the same key.
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
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
            });
            options.AddPolicy(PolicyName, context =>
            {
                var limits = context.RequestServices.GetRequiredService<IOptions<ApiOptions>>().Value.RateLimit;
                return RateLimitPartition.GetTokenBucketLimiter(ClientOf(context), _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = Math.Max(1, limits.Burst),
                    TokensPerPeriod = Math.Max(1, limits.RequestsPerSecond),
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            options.OnRejected = async (rejected, cancellationToken) =>
            {
                var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                var http = rejected.HttpContext;
                http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Title = "Too many requests from this client.",
                        Detail = $"Retry after {seconds} s. The limit is per client (Envio:Api:RateLimit).",
                    },
                });
            };
        });
        return builder;
    }

    // The claim type is part of the key: a subject and a client of the same name are not one client.
    internal static string ClientOf(HttpContext context) =>
        ClientIdentity.Of(context.User) is { } client ? $"{client.Type}:{client.Value}" : "anonymous@" + context.Connection.RemoteIpAddress;
}
