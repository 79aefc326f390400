using System.Diagnostics;
using Envio.ConsumerService.Persistence;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// A store-wide outage is not a failure of the messages that meet it. When a batch fails transiently and the database
/// does not even answer a trivial query, the consumer stops taking batches: each batch in hand stays unacknowledged
/// (nothing is lost if the consumer stops meanwhile) and no message spends its retry budget, so an outage of any length
/// moves nothing to the error queue. One probe asks the database with growing pauses until it answers; then every
/// waiting batch is written again. Meanwhile <c>/health</c> says Degraded, the <c>envio.consumer.paused</c> gauge is 1,
/// and the log says why. The retry queues are for messages that fail while the database answers.
/// </summary>
public sealed partial class StoreOutage : IHealthCheck
{
    private readonly IStoreProbe _store;
    private readonly ConsumerOptions _options;
    private readonly CancellationToken _stopping;
    private readonly ILogger<StoreOutage> _logger;
    private readonly Lock _gate = new();
    private Task? _probe;

    public StoreOutage(IStoreProbe store, IOptions<ConsumerOptions> options, IHostApplicationLifetime lifetime, ILogger<StoreOutage> logger)
    {
        (_store, _options, _stopping, _logger) = (store, options.Value, lifetime.ApplicationStopping, logger);
        ConsumerTelemetry.ObservePaused(() => IsPaused);
    }

    /// <summary>True while the consumer waits for the database to answer again.</summary>
    public bool IsPaused => Volatile.Read(ref _probe) is { IsCompleted: false };

    /// <summary>
    /// After a batch failed transiently: false at once when the database answers (the failure was the batch's own;
    /// it takes the retry queues). Otherwise waits until the database answers again, then true: write the same batch
    /// again, as if nothing had happened.
    /// </summary>
    public async Task<bool> WaitWhileDownAsync(Exception failure, CancellationToken cancellationToken)
    {
        if (!IsPaused && await _store.AnswersAsync(cancellationToken))
        {
            return false;
        }
        Task probe;
        lock (_gate)
        {
            if (_probe is null or { IsCompleted: true })
            {
                _probe = ProbeUntilAnswersAsync(failure);
            }
            probe = _probe;
        }
        await probe.WaitAsync(cancellationToken);
        return true;
    }

    private async Task ProbeUntilAnswersAsync(Exception failure)
    {
        var started = Stopwatch.GetTimestamp();
        LogPaused(_logger, failure);
        var delay = _options.OutageProbeDelay;
        do
        {
            await Task.Delay(delay, _stopping);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.OutageProbeMaxDelay.Ticks));
        }
        while (!await _store.AnswersAsync(_stopping));
        LogResumed(_logger, Stopwatch.GetElapsedTime(started));
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(IsPaused
            ? HealthCheckResult.Degraded("Paused: the database does not answer. Messages wait in the broker; consuming resumes when it answers.")
            : HealthCheckResult.Healthy());

    [LoggerMessage(LogLevel.Warning, "The database does not answer: consuming paused until it does (the batches in hand stay unacknowledged; no message is moved).")]
    private static partial void LogPaused(ILogger logger, Exception exception);

    [LoggerMessage(LogLevel.Information, "The database answers again after {Duration}: consuming resumes.")]
    private static partial void LogResumed(ILogger logger, TimeSpan duration);
}
