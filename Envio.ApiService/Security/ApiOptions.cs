namespace Envio.ApiService.Security;

/// <summary>What the API lets one request and one client do, bound from <c>Envio:Api</c>.</summary>
public sealed class ApiOptions
{
    public const string SectionName = "Envio:Api";

    /// <summary>The largest body <c>POST /api/orders</c> reads; beyond it, 413.</summary>
    public long MaxOrderBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>The largest body <c>POST /api/orders/batch</c> reads; beyond it, 413.</summary>
    public long MaxBatchBodyBytes { get; set; } = 16 * 1024 * 1024;

    public RateLimitOptions RateLimit { get; set; } = new();

    /// <summary>
    /// Per client (the token's <c>client_id</c>/<c>azp</c>, else <c>sub</c>), a token bucket: <see cref="Burst"/>
    /// requests at once, refilled with <see cref="RequestsPerSecond"/> every second. Beyond it, 429 with Retry-After.
    /// </summary>
    public sealed class RateLimitOptions
    {
        public int RequestsPerSecond { get; set; } = 5_000;

        public int Burst { get; set; } = 5_000;
    }
}
