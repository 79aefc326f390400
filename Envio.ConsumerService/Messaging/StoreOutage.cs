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
/// waiting batch is written again. A batch is held at most <see cref="ConsumerOptions.OutageHoldLimit"/>, well inside
/// the broker's consumer timeout (which would otherwise cancel the consumer or close its channel): then it is handed
/// back, and consuming waits for the database (<see cref="WaitUntilAnswersAsync"/>). Meanwhile <c>/health</c> says
/// Degraded, the <c>envio.consumer.paused</c> gauge is 1, and the log says why. The retry queues are for messages that
/// fail while the database answers.
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
    /// After a batch failed transiently: <see cref="OutageWait.NoOutage"/> at once when the database answers (the
    /// failure was the batch's own; it takes the retry queues). Otherwise waits until the database answers again, then
    /// <see cref="OutageWait.Answers"/>: write the same batch again, as if nothing had happened; or, after
    /// <see cref="ConsumerOptions.OutageHoldLimit"/>, <see cref="OutageWait.HoldLimitReached"/>: hand the batch back.
    /// </summary>
    public async Task<OutageWait> WaitWhileDownAsync(Exception failure, CancellationToken cancellationToken)
    {
        if (!IsPaused && await _store.AnswersAsync(cancellationToken))
        {
            return OutageWait.NoOutage;
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
        try
        {
            await probe.WaitAsync(_options.OutageHoldLimit, cancellationToken);
            return OutageWait.Answers;
        }
        catch (TimeoutException)
        {
            LogHandingBack(_logger, _options.OutageHoldLimit);
            return OutageWait.HoldLimitReached;
        }
    }

    /// <summary>Returns at once unless an outage is under way; then when the database answers again.</summary>
    public Task WaitUntilAnswersAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _probe) is { IsCompleted: false } probe ? probe.WaitAsync(cancellationToken) : Task.CompletedTask;

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

    [LoggerMessage(LogLevel.Warning, "A batch was held {HoldLimit} waiting for the database: handed back to its queue before the broker's consumer timeout; consuming resumes when the database answers.")]
    private static partial void LogHandingBack(ILogger logger, TimeSpan holdLimit);

    [LoggerMessage(LogLevel.Information, "The database answers again after {Duration}: consuming resumes.")]
    private static partial void LogResumed(ILogger logger, TimeSpan duration);
}

/// <summary>What a batch that failed transiently does after <see cref="StoreOutage.WaitWhileDownAsync"/>.</summary>
public enum OutageWait
{
    /// <summary>The database answers: the failure was the batch's own, and it takes the retry queues.</summary>
    NoOutage,

    /// <summary>The database answers again after an outage: the same batch is written again.</summary>
    Answers,

    /// <summary>Held as long as it may be: the batch is handed back to its queue, and consuming waits for the database.</summary>
    HoldLimitReached,
}
