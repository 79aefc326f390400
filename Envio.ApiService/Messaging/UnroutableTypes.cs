using System.Collections.Concurrent;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Envio.ApiService.Messaging;

/// <summary>
/// The types whose last publish came back unroutable (their queue was deleted): <c>/health</c> says Degraded while
/// any is, until a publish of the type is confirmed again. Apart from <see cref="MessagePublisher"/> so that the
/// health check never needs the broker connection the publisher is built on.
/// </summary>
public sealed class UnroutableTypes : IHealthCheck
{
    private readonly ConcurrentDictionary<DataObjectType, string> _types = new();

    public void Returned(QueueNames names) => _types[names.Type] =
        $"the last publish to {names.Exchange} came back unroutable (its queue {names.Queue} was missing); it is declared again at the next request";

    public void Confirmed(DataObjectType type)
    {
        if (!_types.IsEmpty)
        {
            _types.TryRemove(type, out _);
        }
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(_types.IsEmpty
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Degraded(string.Join("; ", _types.Select(u => $"{u.Key.Plural}: {u.Value}")) + "."));
}
