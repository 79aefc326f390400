using System.Diagnostics;
using Envio.ConsumerService.Persistence;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Writes a batch so that every message ends up somewhere definite: stored, waiting in a retry queue, or in the error
/// queue. Transient failures get a few quick in-process retries first. When the database does not answer at all, the
/// batch waits for it (<see cref="StoreOutage"/>) and is written again: an outage is nobody's message's fault. A
/// transient failure while the database answers sends the batch through the retry queues. A permanent failure is
/// isolated by splitting the batch: the good halves commit, and only the messages that fail alone go to the error queue.
/// </summary>
public sealed partial class BatchWriter
{
    private readonly IOrderStore _store;
    private readonly FailurePublisher _failures;
    private readonly StoreOutage _outage;
    private readonly ILogger<BatchWriter> _logger;
    private readonly ResiliencePipeline _quickRetries;

    public BatchWriter(IOrderStore store, FailurePublisher failures, StoreOutage outage, IOptions<ConsumerOptions> options, ILogger<BatchWriter> logger)
    {
        (_store, _failures, _outage, _logger) = (store, failures, outage, logger);
        _quickRetries = options.Value.QuickRetries <= 0 ? ResiliencePipeline.Empty : new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(FailureClassifier.IsTransient),
            MaxRetryAttempts = options.Value.QuickRetries,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.Value.QuickRetryDelay,
            OnRetry = args =>
            {
                LogRetrying(_logger, args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception!);
                return default;
            },
        }).Build();
    }

    public async Task WriteAsync(IReadOnlyList<(Delivery Delivery, ReceivedOrder Order)> batch, CancellationToken cancellationToken)
    {
        if (batch.Count == 0)
        {
            return;
        }
        var orders = batch.Select(b => b.Order).ToList();
        while (true)
        {
            using var activity = ConsumerTelemetry.StartInsert(batch.Count);
            try
            {
                var inserted = await _quickRetries.ExecuteAsync(
                    static async (state, ct) => await InsertAsync(state._store, state.orders, ct), (_store, orders), cancellationToken);
                ConsumerTelemetry.Committed(activity, batch, inserted);
                LogWritten(_logger, batch.Count, inserted);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException && FailureClassifier.IsTransient(e))
            {
                if (await _outage.WaitWhileDownAsync(e, cancellationToken))
                {
                    activity?.SetStatus(ActivityStatusCode.Error, "The database did not answer; the batch waited for it.");
                    continue; // the database answers again: the same batch, no retry budget spent
                }
                activity?.SetStatus(ActivityStatusCode.Error, "The batch failed while the database answered.");
                await RetryLaterAsync(batch, e, cancellationToken);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                activity?.SetStatus(ActivityStatusCode.Error, "The database refused the batch.");
                if (batch.Count == 1)
                {
                    if (await _failures.DeadLetterAsync(batch[0].Delivery, $"The database refused the order: {e.Message}", e, cancellationToken) == Move.DeadLettered)
                    {
                        ConsumerTelemetry.MessageDeadLettered(ConsumerTelemetry.DeadLetterReason.Refused);
                        LogRefused(_logger, batch[0].Delivery.Properties.MessageId, batch[0].Order.CorrelationId, e);
                    }
                    return;
                }
                var half = batch.Count / 2;
                await WriteAsync(batch.Take(half).ToList(), cancellationToken);
                await WriteAsync(batch.Skip(half).ToList(), cancellationToken);
                return;
            }
        }
    }

    /// <summary>Each message to its next retry queue, or to the error queue once its retries are spent.</summary>
    private async Task RetryLaterAsync(IReadOnlyList<(Delivery Delivery, ReceivedOrder Order)> batch, Exception failure, CancellationToken cancellationToken)
    {
        LogPostponed(_logger, batch.Count, failure);
        foreach (var (delivery, order) in batch)
        {
            switch (await _failures.RetryLaterAsync(delivery, $"Writing failed transiently: {failure.Message}", failure, cancellationToken))
            {
                case Move.Retried:
                    ConsumerTelemetry.MessageRetried();
                    LogWaitsForRetry(_logger, delivery.Properties.MessageId, order.CorrelationId, FailurePublisher.AttemptsOf(delivery.Properties) + 1);
                    break;
                case Move.DeadLettered:
                    ConsumerTelemetry.MessageDeadLettered(ConsumerTelemetry.DeadLetterReason.Exhausted);
                    LogGaveUp(_logger, delivery.Properties.MessageId, order.CorrelationId, FailurePublisher.AttemptsOf(delivery.Properties) + 1);
                    break;
            }
        }
    }

    /// <summary>One attempt, timed: the insert latency is the database's, without the quick retries' waits.</summary>
    private static async Task<int> InsertAsync(IOrderStore store, List<ReceivedOrder> orders, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var inserted = await store.InsertAsync(orders, cancellationToken);
            ConsumerTelemetry.InsertFinished(started, failure: null);
            return inserted;
        }
        catch (Exception e)
        {
            ConsumerTelemetry.InsertFinished(started, e);
            throw;
        }
    }

    [LoggerMessage(LogLevel.Debug, "Wrote a batch of {Count} orders ({Inserted} new).")]
    private static partial void LogWritten(ILogger logger, int count, int inserted);

    [LoggerMessage(LogLevel.Warning, "Writing a batch failed transiently (attempt {Attempt}); next try in {Delay}.")]
    private static partial void LogRetrying(ILogger logger, int attempt, TimeSpan delay, Exception exception);

    [LoggerMessage(LogLevel.Warning, "A batch failed transiently while the database answers: {Count} messages wait in the retry queues.")]
    private static partial void LogPostponed(ILogger logger, int count, Exception exception);

    [LoggerMessage(LogLevel.Warning, "The database refused message {MessageId} (correlation {CorrelationId}); it went to the error queue.")]
    private static partial void LogRefused(ILogger logger, string? messageId, string? correlationId, Exception exception);

    [LoggerMessage(LogLevel.Debug, "Message {MessageId} (correlation {CorrelationId}) waits in a retry queue (attempt {Attempt}).")]
    private static partial void LogWaitsForRetry(ILogger logger, string? messageId, string? correlationId, int attempt);

    [LoggerMessage(LogLevel.Warning, "Message {MessageId} (correlation {CorrelationId}) went to the error queue after {Attempts} attempts.")]
    private static partial void LogGaveUp(ILogger logger, string? messageId, string? correlationId, int attempts);
}
