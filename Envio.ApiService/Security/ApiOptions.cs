using Envio.Contracts.DataObjects;
using Envio.Messaging;

namespace Envio.ApiService.Security;

/// <summary>What the API lets one request and one client do, bound from <c>Envio:Api</c>.</summary>
public sealed class ApiOptions
{
    public const string SectionName = "Envio:Api";

    public const long DefaultMaxBodyBytes = 1024 * 1024;
    /// <summary>What 1,000 objects need, with room: a batch of 1,000 typical orders is about 600 KB.</summary>
    public const long DefaultMaxBatchBodyBytes = 2 * 1024 * 1024;

    /// <summary>The largest body <c>POST /api/orders</c> reads; beyond it, 413.</summary>
    public long MaxOrderBodyBytes { get; set; } = DefaultMaxBodyBytes;

    /// <summary>The largest body <c>POST /api/orders/batch</c> reads; beyond it, 413.</summary>
    public long MaxBatchBodyBytes { get; set; } = DefaultMaxBatchBodyBytes;

    /// <summary>
    /// Each type's own limits, by its name (<c>Envio:Api:Types:payment:MaxBodyBytes</c>); unset, 1 MiB for one object
    /// and 2 MiB for a batch. Orders take theirs from <see cref="MaxOrderBodyBytes"/> and <see cref="MaxBatchBodyBytes"/>.
    /// </summary>
    public Dictionary<string, TypeLimits> Types { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The limits of one type, each with the setting that gives it (a 413 names it): the type's own when set, else
    /// for orders <see cref="MaxOrderBodyBytes"/> and <see cref="MaxBatchBodyBytes"/>, for any other type the defaults.
    /// </summary>
    public (long Body, string BodySetting, long Batch, string BatchSetting) LimitsOf(DataObjectType type)
    {
        var limits = Types.GetValueOrDefault(type.Name);
        var section = $"{SectionName}:{nameof(Types)}:{type.Name}";
        var isOrder = type.Name == TopologyOptions.OrderType;
        return (
            limits?.MaxBodyBytes ?? (isOrder ? MaxOrderBodyBytes : DefaultMaxBodyBytes),
            limits?.MaxBodyBytes is not null || !isOrder ? $"{section}:{nameof(TypeLimits.MaxBodyBytes)}" : $"{SectionName}:{nameof(MaxOrderBodyBytes)}",
            limits?.MaxBatchBodyBytes ?? (isOrder ? MaxBatchBodyBytes : DefaultMaxBatchBodyBytes),
            limits?.MaxBatchBodyBytes is not null || !isOrder ? $"{section}:{nameof(TypeLimits.MaxBatchBodyBytes)}" : $"{SectionName}:{nameof(MaxBatchBodyBytes)}");
    }

    /// <summary>
    /// The schema version the API publishes a type in: <c>Envio:Api:Types:{name}:SchemaVersion</c>, by default the one
    /// this build knows. During a rolling update to a new version, upgrade the consumers first, keeping the API on the
    /// previous version (the record's Downcast writes it), then switch.
    /// </summary>
    public int SchemaVersionOf(DataObjectType type)
    {
        var version = Types.GetValueOrDefault(type.Name)?.SchemaVersion ?? type.SchemaVersion;
        return type.CanWrite(version)
            ? version
            : throw new InvalidOperationException(
                $"{SectionName}:{nameof(Types)}:{type.Name}:{nameof(TypeLimits.SchemaVersion)} is {version}, but this build writes {type.Name} " +
                $"in version {type.SchemaVersion}{(type.SchemaVersion > 1 ? " (and older ones only when its record has a Downcast)" : "")}.");
    }

    public sealed class TypeLimits
    {
        /// <summary>The schema version published (see <see cref="SchemaVersionOf"/>); unset, this build's.</summary>
        public int? SchemaVersion { get; set; }

        /// <summary>The largest body <c>POST /api/{plural}</c> reads; beyond it, 413.</summary>
        public long? MaxBodyBytes { get; set; }

        /// <summary>The largest body <c>POST /api/{plural}/batch</c> reads; beyond it, 413.</summary>
        public long? MaxBatchBodyBytes { get; set; }
    }

    /// <summary>
    /// How long reading one request body may take in all; past it, 408. Kestrel's minimum data rate
    /// (<see cref="MinBodyBytesPerSecond"/>) stops a stalled body, this one a body trickled just above that rate.
    /// </summary>
    public TimeSpan BodyReadTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Kestrel's minimum request body data rate, after a 5-second grace period; below it, the request ends with 408.</summary>
    public double MinBodyBytesPerSecond { get; set; } = 240;

    /// <summary>
    /// Whether the OpenAPI document (<c>/openapi/v1.json</c>) and the interactive reference (<c>/scalar/v1</c>) are
    /// served, anonymously. Always in Development; elsewhere only when set: the admin surface's shape is no one's business.
    /// </summary>
    public bool PublishApiReference { get; set; }

    /// <summary>
    /// The reverse proxies whose <c>X-Forwarded-For</c>/<c>X-Forwarded-Proto</c> the API believes (the audit's address
    /// and the anonymous rate-limit bucket come from it). None by default: the headers are then ignored, whoever sends them.
    /// </summary>
    public ForwardedHeadersSettings ForwardedHeaders { get; set; } = new();

    public RateLimitOptions RateLimit { get; set; } = new();

    /// <summary>
    /// The request-body bytes held at once across every client (<c>BodyBudget</c>): 64 MiB, an eighth of the compose
    /// memory limit of 512 MiB, so that bodies and the objects parsed from them stay well inside it.
    /// </summary>
    public long MaxBodyBytesInFlight { get; set; } = 64 * 1024 * 1024;

    /// <summary>How long a request waits for its share of <see cref="MaxBodyBytesInFlight"/> before it is answered 503.</summary>
    public TimeSpan BodyBudgetWait { get; set; } = TimeSpan.FromSeconds(2);

    public sealed class ForwardedHeadersSettings
    {
        /// <summary>Addresses of trusted proxies (<c>10.0.0.5</c>).</summary>
        public List<string> KnownProxies { get; set; } = [];

        /// <summary>Networks of trusted proxies, in CIDR notation (<c>172.18.0.0/16</c>).</summary>
        public List<string> KnownNetworks { get; set; } = [];
    }

    /// <summary>
    /// Per client (the token's <c>client_id</c>/<c>azp</c>, else <c>sub</c>), a token bucket: <see cref="Burst"/>
    /// requests at once, refilled with <see cref="RequestsPerSecond"/> every second; and at most
    /// <see cref="ConcurrentRequests"/> in progress at once (slow bodies hold memory and a connection each). Beyond
    /// either, 429 with Retry-After. Requests without a valid token have a bucket per address instead.
    /// </summary>
    public sealed class RateLimitOptions
    {
        public int ConcurrentRequests { get; set; } = 64;

        public int RequestsPerSecond { get; set; } = 5_000;

        public int Burst { get; set; } = 5_000;

        /// <summary>
        /// Per address, requests without a valid token (401s, <c>/health</c>, <c>/alive</c>): a bucket of
        /// <see cref="AnonymousBurst"/> refilled with this many every second. Probes come every few seconds.
        /// </summary>
        public int AnonymousRequestsPerSecond { get; set; } = 20;

        public int AnonymousBurst { get; set; } = 100;
    }
}
