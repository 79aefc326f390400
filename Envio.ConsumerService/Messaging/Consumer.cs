using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Consumes every registered type's work queue: <see cref="ConsumerOptions.Channels"/> sessions per type (each its own
/// channel with its own prefetch and delivery tags, so one batch fills while another commits), each started again
/// after an operator's resume or after the broker closed its channel. Types are independent: one type's backlog,
/// poison or pause never holds up another's.
/// </summary>
public sealed partial class Consumer(
    IConnection connection,
    BatchHandlers handlers,
    FailurePublisher failures,
    ConsumingSwitch consumingSwitch,
    IOptions<ConsumerOptions> consumerOptions,
    ILogger<Consumer> logger) : BackgroundService
{
    private readonly ConsumerOptions _options = consumerOptions.Value;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(handlers.All.SelectMany(handler =>
            Enumerable.Range(0, Math.Max(1, _options.Channels)).Select(_ => ConsumeUntilStoppedAsync(handler, stoppingToken))));

    private async Task ConsumeUntilStoppedAsync(IBatchHandler handler, CancellationToken stoppingToken)
    {
        var type = handler.Names.Type;
        // The client recovers the connection and this consumer by itself after a network or broker failure; a
        // channel the broker closed on its own is not recovered, so consuming starts over on a new one.
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await consumingSwitch.WaitUntilResumedAsync(type, stoppingToken);
                await new ConsumingSession(connection, handler, _options, failures, logger).RunAsync(consumingSwitch.PausedToken(type), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // Shutting down: what is buffered but not written stays unacked and the broker hands it to another consumer.
            }
            catch (Exception e)
            {
                LogConsumeFailed(logger, handler.Names.Queue, _options.ResubscribeDelay, e);
                try
                {
                    await Task.Delay(_options.ResubscribeDelay, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    // Shutting down.
                }
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "Consuming {Queue} failed; starting over in {Delay}.")]
    private static partial void LogConsumeFailed(ILogger logger, string queue, TimeSpan delay, Exception exception);
}
