using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Which types an operator paused, as this process applies it: the kept state (<see cref="ConsumingState"/>, see
/// <see cref="ConsumerControlListener"/>) or an earlier API's command. While a type is paused, <see cref="Consumer"/>
/// takes none of its deliveries and <c>/health</c> says Degraded; the other types go on. Nothing is consumed before the
/// kept state was read once, so a consumer started while the others are paused never takes a message.
/// </summary>
public sealed partial class ConsumingSwitch : IHealthCheck, IDisposable
{
    private readonly ILogger<ConsumingSwitch> _logger;
    private readonly Dictionary<DataObjectType, TypeSwitch> _switches = DataObjectTypes.Registered.ToDictionary(type => type, _ => new TypeSwitch());
    private readonly TaskCompletionSource _known = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private long _applied;

    public ConsumingSwitch(ILogger<ConsumingSwitch> logger)
    {
        _logger = logger;
        ConsumerTelemetry.ObserveOperatorPauses(() => _switches.Select(s => (s.Key.Name, s.Value.IsPaused)).ToList());
    }

    public bool IsPaused(DataObjectType type) => _switches[type].IsPaused;

    /// <summary>The sequence of the kept state applied last (0: none yet).</summary>
    public long AppliedSequence
    {
        get { lock (_gate) { return _applied; } }
    }

    /// <summary>The names of the types paused now.</summary>
    public IReadOnlyList<string> PausedTypes => [.. _switches.Where(s => s.Value.IsPaused).Select(s => s.Key.Name).Order(StringComparer.Ordinal)];

    /// <summary>Cancelled when an operator pauses the type (a fresh token after each resume).</summary>
    public CancellationToken PausedToken(DataObjectType type) => _switches[type].PausedToken;

    /// <summary>Waits until the kept state was read once (or found absent).</summary>
    public Task WaitUntilKnownAsync(CancellationToken cancellationToken) => _known.Task.WaitAsync(cancellationToken);

    /// <summary>Waits until the kept state was read once and the type is not paused.</summary>
    public async Task WaitUntilResumedAsync(DataObjectType type, CancellationToken cancellationToken)
    {
        await _known.Task.WaitAsync(cancellationToken);
        await _switches[type].WaitUntilResumedAsync(cancellationToken);
    }

    /// <summary>
    /// Applies <paramref name="state"/> when it is newer than the one applied, or as new when <paramref name="orEqual"/>
    /// (a broadcast: its sequence equal to the applied one is a second API's command of the same instant, published
    /// later). Returns whether it was applied. Either way the state is known from now on.
    /// </summary>
    public bool Apply(ConsumingState state, string by, bool orEqual)
    {
        bool newer;
        lock (_gate)
        {
            newer = state.Sequence > _applied || (orEqual && state.Sequence == _applied);
            if (newer)
            {
                _applied = state.Sequence;
            }
        }
        if (newer)
        {
            foreach (var (type, each) in _switches)
            {
                var paused = state.Paused.Contains(type.Name, StringComparer.Ordinal);
                if (paused ? each.Pause() : each.Resume())
                {
                    Log(type, paused, by, state.Sequence);
                }
            }
        }
        _known.TrySetResult();
        return newer;
    }

    /// <summary>No state is kept yet: nothing is paused, and consuming may start.</summary>
    public void NothingKept() => _known.TrySetResult();

    /// <summary>An earlier API's command: pauses <paramref name="type"/>, or every type when it is null, until a newer state says otherwise.</summary>
    public void Pause(DataObjectType? type, string by)
    {
        foreach (var (each, state) in _switches.Where(s => type is null || s.Key == type))
        {
            if (state.Pause())
            {
                Log(each, paused: true, by, sequence: null);
            }
        }
    }

    /// <summary>An earlier API's command: resumes <paramref name="type"/>, or every type when it is null.</summary>
    public void Resume(DataObjectType? type, string by)
    {
        foreach (var (each, state) in _switches.Where(s => type is null || s.Key == type))
        {
            if (state.Resume())
            {
                Log(each, paused: false, by, sequence: null);
            }
        }
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var paused = _switches.Where(s => s.Value.IsPaused).Select(s => s.Key.Plural).ToList();
        return Task.FromResult(paused.Count > 0
            ? HealthCheckResult.Degraded($"Consuming {string.Join(", ", paused)} is paused by an operator; the work queues keep what arrives.")
            : HealthCheckResult.Healthy());
    }

    private void Log(DataObjectType type, bool paused, string by, long? sequence)
    {
        var state = sequence is { } known ? $"state {known}" : "an earlier API's command";
        if (paused)
        {
            LogPaused(_logger, type.Plural, by, state);
        }
        else
        {
            LogResumed(_logger, type.Plural, by, state);
        }
    }

    public void Dispose()
    {
        foreach (var state in _switches.Values)
        {
            state.Dispose();
        }
    }

    /// <summary>One type's switch: resumed (a completed task) or paused (a token cancelled at the pause).</summary>
    private sealed class TypeSwitch : IDisposable
    {
        private readonly Lock _gate = new();
        private TaskCompletionSource _resumed = Completed();
        private CancellationTokenSource _paused = new();

        public bool IsPaused
        {
            get { lock (_gate) { return !_resumed.Task.IsCompleted; } }
        }

        public CancellationToken PausedToken
        {
            get { lock (_gate) { return _paused.Token; } }
        }

        public Task WaitUntilResumedAsync(CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                return _resumed.Task.WaitAsync(cancellationToken);
            }
        }

        /// <summary>False when it was paused already.</summary>
        public bool Pause()
        {
            lock (_gate)
            {
                if (!_resumed.Task.IsCompleted)
                {
                    return false;
                }
                _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _paused.Cancel();
                return true;
            }
        }

        /// <summary>False when it was not paused.</summary>
        public bool Resume()
        {
            lock (_gate)
            {
                if (_resumed.Task.IsCompleted)
                {
                    return false;
                }
                _paused.Dispose();
                _paused = new CancellationTokenSource();
                _resumed.TrySetResult();
                return true;
            }
        }

        public void Dispose() => _paused.Dispose();

        private static TaskCompletionSource Completed()
        {
            var completed = new TaskCompletionSource();
            completed.SetResult();
            return completed;
        }
    }

    [LoggerMessage(LogLevel.Warning, "Consuming {Plural} paused by {OperatorName} ({State}): what was delivered is written, nothing more is taken.")]
    private static partial void LogPaused(ILogger logger, string plural, string operatorName, string state);

    [LoggerMessage(LogLevel.Information, "Consuming {Plural} resumed by {OperatorName} ({State}).")]
    private static partial void LogResumed(ILogger logger, string plural, string operatorName, string state);
}
