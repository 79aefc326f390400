using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Every health check's result is reused for <see cref="Freshness"/>: <c>/health</c> is anonymous (the orchestrator
/// probes it), and each call would otherwise open a broker channel and run a database query, as often as anyone on the
/// network asks. Concurrent calls share one run. Each check keeps its own result, so <c>/alive</c> stays as cheap as it was.
/// </summary>
internal static class CachedHealthChecks
{
    public static readonly TimeSpan Freshness = TimeSpan.FromSeconds(2);

    public static IServiceCollection CacheHealthCheckResults(this IServiceCollection services)
    {
        var results = new ConcurrentDictionary<string, (DateTimeOffset At, Lazy<Task<HealthCheckResult>> Result)>(StringComparer.Ordinal);
        services.PostConfigure<HealthCheckServiceOptions>(options =>
        {
            foreach (var registration in options.Registrations)
            {
                var factory = registration.Factory;
                registration.Factory = services => new Cached(registration.Name, () => factory(services), results);
            }
        });
        return services;
    }

    private sealed class Cached(
        string name, Func<IHealthCheck> check, ConcurrentDictionary<string, (DateTimeOffset At, Lazy<Task<HealthCheckResult>> Result)> results)
        : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            // Lazy: under contention the dictionary may build several entries, but only the one it keeps runs the check.
            var now = DateTimeOffset.UtcNow;
            var entry = results.AddOrUpdate(name,
                _ => Run(now, context),
                (_, cached) => now - cached.At < Freshness && !(cached.Result.IsValueCreated && cached.Result.Value.IsFaulted) ? cached : Run(now, context));
            return entry.Result.Value.WaitAsync(cancellationToken);
        }

        private (DateTimeOffset, Lazy<Task<HealthCheckResult>>) Run(DateTimeOffset now, HealthCheckContext context) =>
            (now, new Lazy<Task<HealthCheckResult>>(() => check().CheckHealthAsync(context, CancellationToken.None)));
    }
}
