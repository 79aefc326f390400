using Envio.Contracts.Messaging;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// An operator's pause and resume (<see cref="ConsumerControl"/>), heard on a queue of this process's own bound to the
/// control exchange. While paused, <see cref="OrderConsumer"/> takes no deliveries and <c>/health</c> says Degraded.
/// </summary>
public sealed partial class ConsumingSwitch(IConnection connection, IOptions<TopologyOptions> topology, ILogger<ConsumingSwitch> logger)
    : BackgroundService, IHealthCheck
{
    private readonly TopologyOptions _topology = topology.Value;
    private readonly Lock _gate = new();
    private TaskCompletionSource _resumed = Completed();
    private CancellationTokenSource _paused = new();

    public bool IsPaused
    {
        get { lock (_gate) { return !_resumed.Task.IsCompleted; } }
    }

    /// <summary>Cancelled when an operator pauses consuming (a fresh token after each resume).</summary>
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

    public void Pause(string by)
    {
        lock (_gate)
        {
            if (!_resumed.Task.IsCompleted)
            {
                return;
            }
            _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _paused.Cancel();
        }
        LogPaused(logger, by);
    }

    public void Resume(string by)
    {
        lock (_gate)
        {
            if (_resumed.Task.IsCompleted)
            {
                return;
            }
            _paused.Dispose();
            _paused = new CancellationTokenSource();
            _resumed.TrySetResult();
        }
        LogResumed(logger, by);
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(IsPaused
            ? HealthCheckResult.Degraded("Consuming is paused by an operator; the work queue keeps what arrives.")
            : HealthCheckResult.Healthy());

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
            switch (message.BasicProperties.Type)
            {
                case ConsumerControl.Pause:
                    Pause(by);
                    break;
                case ConsumerControl.Resume:
                    Resume(by);
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
        _paused.Dispose();
        base.Dispose();
    }

    private static TaskCompletionSource Completed()
    {
        var completed = new TaskCompletionSource();
        completed.SetResult();
        return completed;
    }

    [LoggerMessage(LogLevel.Warning, "Consuming paused by {OperatorName}: the batch in hand finishes, the rest goes back to the work queue.")]
    private static partial void LogPaused(ILogger logger, string operatorName);

    [LoggerMessage(LogLevel.Information, "Consuming resumed by {OperatorName}.")]
    private static partial void LogResumed(ILogger logger, string operatorName);
}
