using System.Diagnostics;
using System.Globalization;
using Envio.Messaging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Moves a message that failed: to a retry queue (a transient failure, with attempts left) or to the error queue (a
/// permanent failure, or no attempts left), with the original body and properties plus why, when, where and by whom
/// it failed. The publish is confirmed before the caller acknowledges the original: in the other order a crash in
/// between would lose the message.
/// <para>
/// Moves go over a connection of their own, opened on first use. During a memory or disk alarm the broker blocks
/// every connection that publishes, and everything else on it waits too: on the consuming connection, the acks of
/// stored batches would wait behind a move. A move that is not confirmed within <see cref="ConsumerOptions.MoveTimeout"/>
/// (or is attempted while the broker blocks publishing) is not made: the message goes back to the work queue
/// (<see cref="Move.Returned"/>), and is tried again later. If the broker confirms the late publish after all, the copy in the retry or error
/// queue is a duplicate the idempotent insert absorbs. A move that fails otherwise (a nack; a return, its queue
/// deleted, which declares the type's names again; its exchange gone, which closes the channel; the moves connection
/// lost or recovering) is not made either: that message goes back to the work queue, and the rest of its batch goes on.
/// The broker's "blocked" belongs to one connection: a connection lost while blocked leaves moves unblocked, and a
/// recovered one that publishes into an alarm is told so again.
/// </para>
/// </summary>
public sealed partial class FailurePublisher(
    IConnectionFactory connectionFactory,
    IOptions<ConsumerOptions> consumerOptions,
    ILogger<FailurePublisher> logger) : IAsyncDisposable
{
    /// <summary>How long messages whose move failed (other than by a timeout) wait before they come round again.</summary>
    private static readonly TimeSpan FailedMovePause = TimeSpan.FromSeconds(1);

    private readonly TimeSpan _moveTimeout = consumerOptions.Value.MoveTimeout;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;
    private IChannel? _channel;
    private volatile TaskCompletionSource _unblocked = Completed();
    private long _lastFailure = Stopwatch.GetTimestamp() - Stopwatch.Frequency * 3600;

    /// <summary>The failed attempts recorded on a message.</summary>
    public static int AttemptsOf(IReadOnlyBasicProperties properties) =>
        properties.Headers?.TryGetValue(FailureHeaders.Attempts, out var value) == true && value is int attempts ? attempts : 0;

    /// <summary>
    /// After a transient failure: back to the work queue after the next delay, or to the error queue once every
    /// delay was tried. Returns where the message went.
    /// </summary>
    public async Task<Move> RetryLaterAsync(QueueNames names, Delivery delivery, string reason, Exception exception, CancellationToken cancellationToken)
    {
        var attempts = AttemptsOf(delivery.Properties) + 1;
        var delays = names.Options.EffectiveRetryDelays;
        if (attempts > delays.Count)
        {
            return await DeadLetterAsync(names, delivery, $"Gave up after {attempts} attempts: {reason}", exception, cancellationToken);
        }
        var queue = names.RetryQueue(delays[attempts - 1]);
        return await PublishAsync(names, names.RetryExchange, queue, delivery, Headers(names, delivery, attempts, reason, exception), Move.Retried, cancellationToken);
    }

    /// <summary>To the error queue, for an operator to read why, fix the cause and replay.</summary>
    public Task<Move> DeadLetterAsync(QueueNames names, Delivery delivery, string reason, Exception? exception, CancellationToken cancellationToken) =>
        PublishAsync(names, names.ErrorExchange, routingKey: "", delivery,
            Headers(names, delivery, AttemptsOf(delivery.Properties) + 1, reason, exception), Move.DeadLettered, cancellationToken);

    /// <summary>
    /// A message this consumer cannot read yet (a newer schema version, published during a rolling update): back to
    /// the work queue after the first retry delay, its attempts unspent, until a consumer that knows it takes it.
    /// </summary>
    public Task<Move> DeferAsync(QueueNames names, Delivery delivery, string reason, CancellationToken cancellationToken)
    {
        var headers = Headers(names, delivery, AttemptsOf(delivery.Properties), reason, exception: null);
        if (AttemptsOf(delivery.Properties) == 0)
        {
            headers.Remove(FailureHeaders.Attempts);
        }
        return PublishAsync(names, names.RetryExchange, names.RetryQueue(names.Options.EffectiveRetryDelays[0]), delivery, headers, Move.Deferred, cancellationToken);
    }

    /// <summary>
    /// Waits until the broker takes moves again (it lifted its alarm), at most <see cref="ConsumerOptions.MoveTimeout"/>:
    /// messages that went back to the work queue come round again at once, and would otherwise spin.
    /// </summary>
    public async Task WaitUntilMovesPossibleAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _unblocked.Task.WaitAsync(_moveTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Still blocked, or the move simply timed out: try again.
        }
        // A move that failed otherwise would fail again at once: a pause, not a spin.
        var sinceFailure = Stopwatch.GetElapsedTime(Volatile.Read(ref _lastFailure));
        if (sinceFailure < FailedMovePause)
        {
            await Task.Delay(FailedMovePause - sinceFailure, cancellationToken);
        }
    }

    private static Dictionary<string, object?> Headers(QueueNames names, Delivery delivery, int attempts, string reason, Exception? exception) =>
        new(delivery.Properties.Headers ?? new Dictionary<string, object?>())
        {
            [FailureHeaders.Attempts] = attempts,
            [FailureHeaders.Reason] = reason,
            [FailureHeaders.Exception] = exception is null ? null : FailureText.WithType(exception),
            [FailureHeaders.FailedAt] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            [FailureHeaders.OriginalQueue] = names.Queue,
            [FailureHeaders.Consumer] = Environment.MachineName,
        };

    private async Task<Move> PublishAsync(
        QueueNames names, string exchange, string routingKey, Delivery delivery, Dictionary<string, object?> headers, Move move, CancellationToken cancellationToken)
    {
        if (delivery.IsStale)
        {
            // Its channel was lost: the broker hands the message out again, and moving this copy would leave two.
            return Move.Stale;
        }
        if (!_unblocked.Task.IsCompleted)
        {
            return Move.Returned;
        }

        var properties = new BasicProperties(delivery.Properties) { Persistent = true, Headers = headers };
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_moveTimeout);
            try
            {
                var channel = await OpenChannelAsync(timeout.Token);
                await channel.BasicPublishAsync(exchange, routingKey, mandatory: true, properties, delivery.Body, timeout.Token);
                return move;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Whether the broker has it is unknown (a late confirm is ignored). The channel stays: closing it would
                // wait for a broker that does not read from a blocked connection.
                LogMoveTimedOut(logger, delivery.Properties.MessageId, _moveTimeout);
                return Move.Returned;
            }
            catch (Exception e) when (e is RabbitMQClientException or IOException)
            {
                // Not taken (a nack, a return, a closed channel or connection): this message waits in the work queue.
                // A return (its queue gone) or a channel closed for a missing exchange: the type's names are declared
                // again, so the next try routes. A closed channel is replaced at the next move.
                LogMoveFailed(logger, delivery.Properties.MessageId, e.Message);
                Volatile.Write(ref _lastFailure, Stopwatch.GetTimestamp());
                if (e is PublishException { IsReturn: true } or OperationInterruptedException { ShutdownReason.ReplyCode: Constants.NotFound }
                    && _connection is { } connection)
                {
                    await RedeclareAsync(connection, names, cancellationToken);
                }
                return Move.Returned;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RedeclareAsync(IConnection connection, QueueNames names, CancellationToken cancellationToken)
    {
        try
        {
            await Topology.DeclareAsync(connection, names, cancellationToken);
        }
        catch (Exception e) when (e is RabbitMQClientException or IOException)
        {
            LogRedeclareFailed(logger, names.Queue, e.Message); // tried again at the next return
        }
    }

    private async Task<IChannel> OpenChannelAsync(CancellationToken cancellationToken)
    {
        if (_channel is { IsOpen: true } open)
        {
            return open;
        }
        if (_channel is not null)
        {
            await _channel.DisposeAsync();
        }
        if (_connection is null)
        {
            _connection = await connectionFactory.CreateConnectionAsync($"{Environment.MachineName} envio-consumer moves", cancellationToken);
            _connection.ConnectionBlockedAsync += OnBlockedAsync;
            _connection.ConnectionUnblockedAsync += OnUnblockedAsync;
            _connection.ConnectionShutdownAsync += OnShutdownAsync;
        }
        return _channel = await _connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
    }

    private Task OnBlockedAsync(object sender, ConnectionBlockedEventArgs args)
    {
        if (_unblocked.Task.IsCompleted)
        {
            _unblocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        LogBlocked(logger, args.Reason);
        return Task.CompletedTask;
    }

    private Task OnUnblockedAsync(object sender, AsyncEventArgs args)
    {
        _unblocked.TrySetResult();
        LogUnblocked(logger);
        return Task.CompletedTask;
    }

    private Task OnShutdownAsync(object sender, ShutdownEventArgs args)
    {
        // The connection that was blocked is gone, and the broker never unblocks the one that replaces it: it blocks
        // that one too if it publishes while the alarm lasts.
        if (_unblocked.TrySetResult())
        {
            LogBlockEndedWithConnection(logger);
        }
        return Task.CompletedTask;
    }

    private static TaskCompletionSource Completed()
    {
        var completed = new TaskCompletionSource();
        completed.SetResult();
        return completed;
    }

    public async ValueTask DisposeAsync()
    {
        if (_channel is not null)
        {
            await _channel.DisposeAsync();
        }
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
        _gate.Dispose();
    }

    [LoggerMessage(LogLevel.Warning, "The broker blocks publishing ({Reason}): failed messages wait in the work queue until it lifts the alarm.")]
    private static partial void LogBlocked(ILogger logger, string reason);

    [LoggerMessage(LogLevel.Information, "The broker takes publishes again: failed messages are moved again.")]
    private static partial void LogUnblocked(ILogger logger);

    [LoggerMessage(LogLevel.Information, "The moves connection was lost while the broker blocked it: moves are tried again on the next one.")]
    private static partial void LogBlockEndedWithConnection(ILogger logger);

    [LoggerMessage(LogLevel.Warning, "Moving message {MessageId} failed ({Reason}): it goes back to the work queue.")]
    private static partial void LogMoveFailed(ILogger logger, string? messageId, string reason);

    [LoggerMessage(LogLevel.Warning, "Declaring {Queue}'s names again after a move came back unroutable failed ({Reason}).")]
    private static partial void LogRedeclareFailed(ILogger logger, string queue, string reason);

    [LoggerMessage(LogLevel.Warning, "Moving message {MessageId} was not confirmed within {Timeout}: it goes back to the work queue.")]
    private static partial void LogMoveTimedOut(ILogger logger, string? messageId, TimeSpan timeout);
}

/// <summary>Where a failed message went.</summary>
public enum Move
{
    /// <summary>To a retry queue: it comes back after a delay.</summary>
    Retried,

    /// <summary>To the error queue.</summary>
    DeadLettered,

    /// <summary>Back to the work queue after a delay, its attempts unspent: this consumer cannot read it yet.</summary>
    Deferred,

    /// <summary>Nowhere yet: the broker did not take the move; the message goes back to the work queue.</summary>
    Returned,

    /// <summary>Nowhere: its channel was lost, and the broker delivers it again.</summary>
    Stale,
}

public static class Moves
{
    /// <summary>What the acknowledgement step does with a delivery that went this way.</summary>
    public static Outcome OutcomeOf(this Move move) => move switch
    {
        Move.Returned => Outcome.ReturnToQueue,
        Move.Stale => Outcome.Stale,
        _ => Outcome.Moved,
    };
}
