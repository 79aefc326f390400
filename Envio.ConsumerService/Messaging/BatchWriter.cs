using System.Diagnostics;
using Envio.ConsumerService.Persistence;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Writes a batch of one type so that every message ends up somewhere definite: stored, waiting in a retry queue, or
/// in the error queue; it returns where each went, for the acknowledgement. Transient failures get a few quick
/// in-process retries first. When the database takes no writes at all, or this type's batches keep failing while it
/// does, the batch waits (<see cref="StoreOutage"/>) and is written again, or handed back unharmed if the outage
/// outlasts <see cref="ConsumerOptions.OutageHoldLimit"/>: an outage is nobody's message's fault. A single transient
/// failure while the database takes writes sends the batch through the retry queues. A permanent failure is isolated by splitting the
/// batch: the good halves commit, and only the messages that fail alone go to the error queue.
/// </summary>
public sealed partial class BatchWriter
{
    private readonly FailurePublisher _failures;
    private readonly StoreOutage _outage;
    private readonly ILogger<BatchWriter> _logger;
    private readonly ResiliencePipeline _quickRetries;

    public BatchWriter(FailurePublisher failures, StoreOutage outage, IOptions<ConsumerOptions> options, ILogger<BatchWriter> logger)
    {
        (_failures, _outage, _logger) = (failures, outage, logger);
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

    /// <summary>Writes <paramref name="batch"/> into <paramref name="table"/>; the outcome of each message, in the batch's order.</summary>
    public async Task<Outcome[]> WriteAsync<T>(
        ITableWriter<T> table, QueueNames names, IReadOnlyList<(Delivery Delivery, Received<T> Received)> batch, CancellationToken cancellationToken)
        where T : class
    {
        if (batch.Count == 0)
        {
            return [];
        }
        var type = names.Type;
        var received = batch.Select(b => b.Received).ToList();
        long? heldSince = null;
        while (true)
        {
            using var activity = ConsumerTelemetry.StartInsert(type, batch.Count);
            try
            {
                var inserted = await _quickRetries.ExecuteAsync(
                    static async (state, ct) => await InsertAsync(state.table, state.type, state.received, ct), (table, type, received), cancellationToken);
                ConsumerTelemetry.Committed(activity, type, batch.Select(b => b.Delivery), batch.Count, inserted);
                _outage.Committed(type);
                LogWritten(_logger, batch.Count, type.Plural, inserted);
                return new Outcome[batch.Count]; // all Stored
            }
            catch (Exception e) when (e is not OperationCanceledException && FailureClassifier.IsTransient(e))
            {
                heldSince ??= Stopwatch.GetTimestamp();
                switch (await _outage.WaitWhileDownAsync(type, e, heldSince.Value, cancellationToken))
                {
                    case OutageWait.WriteAgain:
                        activity?.SetStatus(ActivityStatusCode.Error, "The database took no writes; the batch waited.");
                        continue; // the same batch again, no retry budget spent
                    case OutageWait.HoldLimitReached:
                        activity?.SetStatus(ActivityStatusCode.Error, "The database took no writes; the batch was handed back.");
                        return Enumerable.Repeat(Outcome.HandedBack, batch.Count).ToArray();
                }
                activity?.SetStatus(ActivityStatusCode.Error, "The batch failed while the database took writes.");
                return await RetryLaterAsync(names, batch, e, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                activity?.SetStatus(ActivityStatusCode.Error, "The database refused the batch.");
                if (batch.Count == 1)
                {
                    var move = await _failures.DeadLetterAsync(names, batch[0].Delivery, $"The database refused the {type.Name}: {FailureText.Of(e)}", e, cancellationToken);
                    if (move == Move.DeadLettered)
                    {
                        ConsumerTelemetry.MessageDeadLettered(type, ConsumerTelemetry.DeadLetterReason.Refused);
                        LogRefused(_logger, batch[0].Delivery.Properties.MessageId, batch[0].Received.CorrelationId, e);
                    }
                    return [move.OutcomeOf()];
                }
                var half = batch.Count / 2;
                return [
                    .. await WriteAsync(table, names, batch.Take(half).ToList(), cancellationToken),
                    .. await WriteAsync(table, names, batch.Skip(half).ToList(), cancellationToken),
                ];
            }
        }
    }

    /// <summary>Each message to its next retry queue, or to the error queue once its retries are spent.</summary>
    private async Task<Outcome[]> RetryLaterAsync<T>(
        QueueNames names, IReadOnlyList<(Delivery Delivery, Received<T> Received)> batch, Exception failure, CancellationToken cancellationToken)
        where T : class
    {
        LogPostponed(_logger, batch.Count, failure);
        var outcomes = new Outcome[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var (delivery, received) = batch[i];
            var move = await _failures.RetryLaterAsync(names, delivery, $"Writing failed transiently: {FailureText.Of(failure)}", failure, cancellationToken);
            switch (move)
            {
                case Move.Retried:
                    ConsumerTelemetry.MessageRetried(names.Type);
                    LogWaitsForRetry(_logger, delivery.Properties.MessageId, received.CorrelationId, FailurePublisher.AttemptsOf(delivery.Properties) + 1);
                    break;
                case Move.DeadLettered:
                    ConsumerTelemetry.MessageDeadLettered(names.Type, ConsumerTelemetry.DeadLetterReason.Exhausted);
                    LogGaveUp(_logger, delivery.Properties.MessageId, received.CorrelationId, FailurePublisher.AttemptsOf(delivery.Properties) + 1);
                    break;
            }
            outcomes[i] = move.OutcomeOf();
        }
        return outcomes;
    }

    /// <summary>One attempt, timed: the insert latency is the database's, without the quick retries' waits.</summary>
    private static async Task<int> InsertAsync<T>(ITableWriter<T> table, DataObjectType type, List<Received<T>> batch, CancellationToken cancellationToken)
        where T : class
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var inserted = await table.InsertAsync(batch, cancellationToken);
            ConsumerTelemetry.InsertFinished(type, started, failure: null);
            return inserted;
        }
        catch (Exception e)
        {
            ConsumerTelemetry.InsertFinished(type, started, e);
            throw;
        }
    }

    [LoggerMessage(LogLevel.Debug, "Wrote a batch of {Count} {Plural} ({Inserted} new).")]
    private static partial void LogWritten(ILogger logger, int count, string plural, int inserted);

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
