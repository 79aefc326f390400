using System.Collections.Concurrent;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace Envio.Messaging;

/// <summary>
/// The queues a service found declared with other arguments than its settings give (see
/// <see cref="Topology.DeclareAsync"/>): each is logged once, with the fix, and <c>/health</c> says Degraded, naming them,
/// until a declaration finds the queue as configured again (the setting put back, or the queue declared anew).
/// </summary>
public sealed partial class QueueMismatches(ILogger<QueueMismatches> logger) : IHealthCheck
{
    private readonly ConcurrentDictionary<string, string> _mismatches = new(StringComparer.Ordinal);

    /// <summary>What declaring <paramref name="names"/> found, replacing what an earlier declaration of them found.</summary>
    public void Record(QueueNames names, TopologyDeclaration declaration)
    {
        foreach (var mismatch in declaration.Mismatches)
        {
            if (!_mismatches.TryGetValue(mismatch.Queue, out var known) || known != mismatch.Description)
            {
                _mismatches[mismatch.Queue] = mismatch.Description;
                LogMismatch(logger, mismatch.Description);
            }
        }
        foreach (var queue in names.AllQueues.Except(declaration.Mismatches.Select(m => m.Queue)))
        {
            _mismatches.TryRemove(queue, out _);
        }
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(_mismatches.IsEmpty
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Degraded(string.Join(" ", _mismatches.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => m.Value))));

    [LoggerMessage(LogLevel.Warning, "{Mismatch}")]
    private static partial void LogMismatch(ILogger logger, string mismatch);
}
