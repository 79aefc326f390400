using Envio.Contracts;
using Envio.Messaging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Samples how many messages wait in every type's work, retry and error queues (a passive declare each, on a channel of its
/// own) every <see cref="Interval"/>, for the <c>envio.queue.depth</c> gauge. The gauge reads the last sample: a
/// metrics export never waits on the broker.
/// </summary>
public sealed partial class QueueDepthMonitor(
    IConnection connection, IOptions<TopologyOptions> topology, ILogger<QueueDepthMonitor> logger) : BackgroundService
{
    private readonly TopologyOptions _topology = topology.Value;
    private IChannel? _channel;

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            await SampleAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One sample of every queue. A queue that does not exist (yet) is skipped; a broker away is tried next time.</summary>
    public async Task SampleAsync(CancellationToken cancellationToken)
    {
        foreach (var names in DataObjectTypes.Registered.Select(_topology.NamesOf))
        foreach (var queue in names.AllQueues)
        {
            try
            {
                if (_channel is not { IsOpen: true })
                {
                    if (_channel is not null)
                    {
                        await _channel.DisposeAsync();
                    }
                    _channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
                }
                var declared = await _channel.QueueDeclarePassiveAsync(queue, cancellationToken);
                ConsumerTelemetry.QueueDepthSampled(queue, names.Type, declared.MessageCount);
            }
            catch (OperationInterruptedException)
            {
                // The queue does not exist: the broker closed the channel; the next queue opens another.
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogSampleFailed(logger, e);
                return;
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_channel is not null)
        {
            await _channel.DisposeAsync();
        }
    }

    [LoggerMessage(LogLevel.Debug, "Sampling the queue depths failed; trying again at the next interval.")]
    private static partial void LogSampleFailed(ILogger logger, Exception exception);
}
