using System.Collections.Concurrent;
using Envio.Messaging;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Consumes every registered type's work queue: <see cref="ConsumerOptions.Channels"/> sessions per type (each its own
/// channel with its own prefetch and delivery tags, so one batch fills while another commits), each started again
/// after an operator's resume, after the database answers again (a batch held through an outage is handed back before
/// the broker's consumer timeout), or after the broker closed its channel or cancelled its consumer. Types are
/// independent: one type's backlog, poison, pause or refused queue never holds up another's. A type whose sessions
/// keep failing (its queue refused, declared with other arguments, gone) makes <c>/health</c> say Degraded, naming the
/// queue and why, until one starts.
/// </summary>
public sealed partial class Consumer(
    IConnection connection,
    BatchHandlers handlers,
    FailurePublisher failures,
    ConsumingSwitch consumingSwitch,
    StoreOutage outage,
    QueueMismatches mismatches,
    IOptions<ConsumerOptions> consumerOptions,
    ILogger<Consumer> logger) : BackgroundService, IHealthCheck
{
    /// <summary>The longest pause between attempts at a session that keeps failing.</summary>
    private static readonly TimeSpan MaxResubscribeDelay = TimeSpan.FromSeconds(30);

    private readonly ConsumerOptions _options = consumerOptions.Value;
    private readonly ConcurrentDictionary<string, string> _failing = new(StringComparer.Ordinal);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(handlers.All.SelectMany(handler =>
            Enumerable.Range(0, Math.Max(1, _options.Channels)).Select(_ => ConsumeUntilStoppedAsync(handler, stoppingToken))));

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(_failing.IsEmpty
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Degraded($"Consuming {string.Join(", ", _failing.Keys.Order(StringComparer.Ordinal))} fails: " +
                string.Join("; ", _failing.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => f.Value)) + " (trying again; the other types go on)."));

    private async Task ConsumeUntilStoppedAsync(IBatchHandler handler, CancellationToken stoppingToken)
    {
        var (type, queue) = (handler.Names.Type, handler.Names.Queue);
        var delay = _options.ResubscribeDelay;
        // The client recovers the connection and this consumer by itself after a network or broker failure; a
        // channel the broker closed on its own is not recovered, so consuming starts over on a new one.
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await consumingSwitch.WaitUntilResumedAsync(type, stoppingToken);
                await outage.WaitUntilAnswersAsync(stoppingToken); // a session that handed its batch back waits here
                await new ConsumingSession(connection, handler, _options, failures, mismatches, logger).RunAsync(() =>
                {
                    _failing.TryRemove(queue, out _);
                    delay = _options.ResubscribeDelay;
                }, consumingSwitch.PausedToken(type), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // Shutting down: what is buffered but not written stays unacked and the broker hands it to another consumer.
            }
            catch (Exception e)
            {
                _failing[queue] = e.Message;
                LogConsumeFailed(logger, queue, delay, e);
                try
                {
                    await Task.Delay(delay, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    // Shutting down.
                }
                // A session that keeps failing (a queue the broker refuses) is tried less often, up to a limit.
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Math.Max(MaxResubscribeDelay.Ticks, _options.ResubscribeDelay.Ticks)));
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "Consuming {Queue} failed; starting over in {Delay}.")]
    private static partial void LogConsumeFailed(ILogger logger, string queue, TimeSpan delay, Exception exception);
}
