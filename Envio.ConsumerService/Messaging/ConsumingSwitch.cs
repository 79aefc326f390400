using System.Text;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// An operator's pause and resume (<see cref="ConsumerControl"/>) of one type or of all, heard on a queue of this
/// process's own bound to the control exchange. While a type is paused, <see cref="Consumer"/> takes none of its
/// deliveries and <c>/health</c> says Degraded; the other types go on.
/// </summary>
public sealed partial class ConsumingSwitch(IConnection connection, IOptions<TopologyOptions> topology, ILogger<ConsumingSwitch> logger)
    : BackgroundService, IHealthCheck
{
    private readonly TopologyOptions _topology = topology.Value;
    private readonly Dictionary<DataObjectType, TypeSwitch> _switches = DataObjectTypes.Registered.ToDictionary(type => type, _ => new TypeSwitch());

    public bool IsPaused(DataObjectType type) => _switches[type].IsPaused;

    /// <summary>Cancelled when an operator pauses the type (a fresh token after each resume).</summary>
    public CancellationToken PausedToken(DataObjectType type) => _switches[type].PausedToken;

    public Task WaitUntilResumedAsync(DataObjectType type, CancellationToken cancellationToken) => _switches[type].WaitUntilResumedAsync(cancellationToken);

    /// <summary>Pauses <paramref name="type"/>, or every type when it is null.</summary>
    public void Pause(DataObjectType? type, string by)
    {
        foreach (var (each, state) in _switches.Where(s => type is null || s.Key == type))
        {
            if (state.Pause())
            {
                LogPaused(logger, each.Plural, by);
            }
        }
    }

    /// <summary>Resumes <paramref name="type"/>, or every type when it is null.</summary>
    public void Resume(DataObjectType? type, string by)
    {
        foreach (var (each, state) in _switches.Where(s => type is null || s.Key == type))
        {
            if (state.Resume())
            {
                LogResumed(logger, each.Plural, by);
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

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The client recovers this channel, its exclusive queue and the consumer after a connection loss.
        var channel = await connection.CreateChannelAsync(cancellationToken: stoppingToken);
        await ConsumerControl.DeclareAsync(channel, _topology, stoppingToken);
        var queue = $"{_topology.ControlExchange}.{Environment.MachineName}.{Guid.NewGuid():N}";
        await channel.QueueDeclareAsync(queue, durable: false, exclusive: true, autoDelete: true, cancellationToken: stoppingToken);
        await channel.QueueBindAsync(queue, _topology.ControlExchange, routingKey: "", cancellationToken: stoppingToken);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, message) =>
        {
            var by = message.BasicProperties.AppId ?? "unknown";
            var named = message.BasicProperties.Headers?.TryGetValue(ConsumerControl.DataObjectHeader, out var value) == true
                ? value switch { byte[] bytes => Encoding.UTF8.GetString(bytes), string text => text, _ => "" }
                : null;
            var type = DataObjectTypes.Registered.ByName(named);
            if (named is not null && type is null)
            {
                LogUnknownType(logger, named, by);
                return Task.CompletedTask;
            }
            switch (message.BasicProperties.Type)
            {
                case ConsumerControl.Pause:
                    Pause(type, by);
                    break;
                case ConsumerControl.Resume:
                    Resume(type, by);
                    break;
            }
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(queue, autoAck: true, consumer, stoppingToken);
        try
        {
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }
        catch (OperationCanceledException)
        {
            // Shutting down.
        }
        finally
        {
            await channel.DisposeAsync();
        }
    }

    public override void Dispose()
    {
        foreach (var state in _switches.Values)
        {
            state.Dispose();
        }
        base.Dispose();
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

    [LoggerMessage(LogLevel.Warning, "Consuming {Plural} paused by {OperatorName}: the batch in hand finishes, the rest goes back to the work queue.")]
    private static partial void LogPaused(ILogger logger, string plural, string operatorName);

    [LoggerMessage(LogLevel.Information, "Consuming {Plural} resumed by {OperatorName}.")]
    private static partial void LogResumed(ILogger logger, string plural, string operatorName);

    [LoggerMessage(LogLevel.Warning, "A command from {OperatorName} names '{Type}', which is no registered type of data object: ignored.")]
    private static partial void LogUnknownType(ILogger logger, string type, string operatorName);
}
