using System.Collections.Concurrent;
using System.Diagnostics;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.DataObjects;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// An outage is not a failure of the messages that meet it. Two kinds are told apart from a batch's own transient
/// failure (a deadlock, which the retry queues are for):
/// <list type="bullet">
/// <item>The database takes no writes at all: the probe (a heartbeat row written and committed) fails, as it does
/// when the database is down, read-only after a failover, out of disk or its log full. The consumer stops taking
/// batches; one probe asks again with growing pauses, and then every waiting batch is written again.</item>
/// <item>It takes writes, but not one type's: <see cref="ConsumerOptions.OutageAfterFailures"/> batches of the type
/// in a row failed transiently (a revoked privilege, a table a migration holds locked). Its batches are held and
/// written again with growing pauses until one commits; the other types go on.</item>
/// </list>
/// Either way each batch in hand stays unacknowledged (nothing is lost if the consumer stops meanwhile) and no message
/// spends its retry budget, so an outage of any length moves nothing to the error queue. A batch is held at most
/// <see cref="ConsumerOptions.OutageHoldLimit"/>, well inside the broker's consumer timeout (which would otherwise
/// cancel the consumer or close its channel): then it is handed back, and consuming waits for the database
/// (<see cref="WaitUntilAnswersAsync"/>). Meanwhile <c>/health</c> says Degraded, the <c>envio.consumer.paused</c>
/// gauge is 1 while the database takes no writes, and the log says why.
/// </summary>
public sealed partial class StoreOutage : IHealthCheck
{
    private readonly IStoreProbe _store;
    private readonly ConsumerOptions _options;
    private readonly CancellationToken _stopping;
    private readonly ILogger<StoreOutage> _logger;
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<string, FailureRun> _runs = new(StringComparer.Ordinal);
    private Task? _probe;

    public StoreOutage(IStoreProbe store, IOptions<ConsumerOptions> options, IHostApplicationLifetime lifetime, ILogger<StoreOutage> logger)
    {
        (_store, _options, _stopping, _logger) = (store, options.Value, lifetime.ApplicationStopping, logger);
        ConsumerTelemetry.ObservePaused(() => IsPaused);
    }

    /// <summary>True while the consumer waits for the database to take writes again.</summary>
    public bool IsPaused => Volatile.Read(ref _probe) is { IsCompleted: false };

    /// <summary>
    /// After a batch of <paramref name="type"/>, held since <paramref name="heldSince"/> (a <see cref="Stopwatch"/>
    /// timestamp), failed transiently: <see cref="OutageWait.NoOutage"/> at once when the database takes writes and the
    /// type's failures are not yet a run (the failure was the batch's own; it takes the retry queues). Otherwise waits,
    /// then <see cref="OutageWait.WriteAgain"/>: the same batch, as if nothing had happened; or, once the batch was held
    /// <see cref="ConsumerOptions.OutageHoldLimit"/>, <see cref="OutageWait.HoldLimitReached"/>: hand it back.
    /// </summary>
    public async Task<OutageWait> WaitWhileDownAsync(DataObjectType type, Exception failure, long heldSince, CancellationToken cancellationToken)
    {
        var run = _runs.GetOrAdd(type.Plural, static _ => new FailureRun());
        var failures = run.Add(failure);
        var holdable = _options.OutageHoldLimit - Stopwatch.GetElapsedTime(heldSince);
        if (!IsPaused && await _store.TakesWritesAsync(cancellationToken))
        {
            if (failures < _options.OutageAfterFailures)
            {
                return OutageWait.NoOutage;
            }
            // The database takes writes but not this type's: the batch itself is the probe, tried less and less often.
            var pause = ProbeDelay(failures - _options.OutageAfterFailures);
            if (pause > holdable)
            {
                LogHandingBack(_logger, _options.OutageHoldLimit);
                return OutageWait.HoldLimitReached;
            }
            if (failures == _options.OutageAfterFailures)
            {
                LogTypeHeld(_logger, type.Plural, failures, failure);
            }
            await Task.Delay(pause, cancellationToken);
            return OutageWait.WriteAgain;
        }
        Task probe;
        lock (_gate)
        {
            if (_probe is null or { IsCompleted: true })
            {
                _probe = ProbeUntilWritableAsync(failure);
            }
            probe = _probe;
        }
        try
        {
            await probe.WaitAsync(holdable > TimeSpan.Zero ? holdable : TimeSpan.Zero, cancellationToken);
            return OutageWait.WriteAgain;
        }
        catch (TimeoutException)
        {
            LogHandingBack(_logger, _options.OutageHoldLimit);
            return OutageWait.HoldLimitReached;
        }
    }

    /// <summary>A batch of <paramref name="type"/> committed: whatever run of failures it had is over.</summary>
    public void Committed(DataObjectType type)
    {
        if (!_runs.IsEmpty && _runs.TryRemove(type.Plural, out var run) && run.Count >= _options.OutageAfterFailures)
        {
            LogTypeResumed(_logger, type.Plural, run.Count);
        }
    }

    /// <summary>Returns at once unless the database takes no writes; then when it does again.</summary>
    public Task WaitUntilAnswersAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _probe) is { IsCompleted: false } probe ? probe.WaitAsync(cancellationToken) : Task.CompletedTask;

    private async Task ProbeUntilWritableAsync(Exception failure)
    {
        var started = Stopwatch.GetTimestamp();
        LogPaused(_logger, failure);
        var probes = 0;
        do
        {
            await Task.Delay(ProbeDelay(probes++), _stopping);
        }
        while (!await _store.TakesWritesAsync(_stopping));
        LogResumed(_logger, Stopwatch.GetElapsedTime(started));
    }

    /// <summary><see cref="ConsumerOptions.OutageProbeDelay"/> doubled <paramref name="doublings"/> times, at most <see cref="ConsumerOptions.OutageProbeMaxDelay"/>.</summary>
    private TimeSpan ProbeDelay(int doublings) =>
        TimeSpan.FromTicks((long)Math.Min(_options.OutageProbeMaxDelay.Ticks, _options.OutageProbeDelay.Ticks * Math.Pow(2, Math.Min(doublings, 30))));

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (IsPaused)
        {
            return Task.FromResult(HealthCheckResult.Degraded(
                "Paused: the database takes no writes. Messages wait in the broker; consuming resumes when it does."));
        }
        var held = _runs.Where(r => r.Value.Count >= _options.OutageAfterFailures).OrderBy(r => r.Key, StringComparer.Ordinal).ToList();
        return Task.FromResult(held.Count == 0
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Degraded(string.Join("; ", held.Select(r =>
                $"Writing {r.Key} fails while the database takes writes ({r.Value.Count} batches in a row; last: {r.Value.LastError})")) +
                ". Their batches are held and written again; nothing is moved."));
    }

    /// <summary>One type's transient batch failures since its last commit.</summary>
    private sealed class FailureRun
    {
        private int _count;
        private volatile string _lastError = "";

        public int Count => Volatile.Read(ref _count);

        public string LastError => _lastError;

        public int Add(Exception failure)
        {
            _lastError = failure.Message;
            return Interlocked.Increment(ref _count);
        }
    }

    [LoggerMessage(LogLevel.Warning, "The database takes no writes: consuming paused until it does (the batches in hand stay unacknowledged; no message is moved).")]
    private static partial void LogPaused(ILogger logger, Exception exception);

    [LoggerMessage(LogLevel.Warning, "Writing {Plural} failed {Failures} batches in a row while the database takes writes: their batches are held and written again until one commits (no message is moved).")]
    private static partial void LogTypeHeld(ILogger logger, string plural, int failures, Exception exception);

    [LoggerMessage(LogLevel.Information, "Writing {Plural} works again after {Failures} failed batches in a row.")]
    private static partial void LogTypeResumed(ILogger logger, string plural, int failures);

    [LoggerMessage(LogLevel.Warning, "A batch was held {HoldLimit} waiting for the database: handed back to its queue before the broker's consumer timeout; consuming resumes when the database takes writes.")]
    private static partial void LogHandingBack(ILogger logger, TimeSpan holdLimit);

    [LoggerMessage(LogLevel.Information, "The database takes writes again after {Duration}: consuming resumes.")]
    private static partial void LogResumed(ILogger logger, TimeSpan duration);
}

/// <summary>What a batch that failed transiently does after <see cref="StoreOutage.WaitWhileDownAsync"/>.</summary>
public enum OutageWait
{
    /// <summary>The database takes writes and the failure was the batch's own: it takes the retry queues.</summary>
    NoOutage,

    /// <summary>After an outage, or a pause in a run of failures: the same batch is written again.</summary>
    WriteAgain,

    /// <summary>Held as long as it may be: the batch is handed back to its queue, and consuming waits for the database.</summary>
    HoldLimitReached,
}
