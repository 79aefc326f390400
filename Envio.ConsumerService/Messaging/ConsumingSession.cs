using System.Diagnostics;
using System.Threading.Channels;
using Envio.Messaging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// One channel consuming one type's work queue, from its opening to its end: its buffer of deliveries, its generation
/// (see <see cref="ChannelGeneration"/>) and its end. Batches of up to <see cref="ConsumerOptions.BatchSize"/> messages
/// or <see cref="ConsumerOptions.BatchWindow"/> go to the type's <see cref="IBatchHandler"/>, one at a time (so a
/// multiple-ack never covers a message whose batch is not done), and are acknowledged by what it says became of each.
/// A session that receives nothing for <see cref="ConsumerOptions.IdleRenewal"/> renews its consumer. The session ends
/// when an operator pauses the type, when a batch was handed back through a database outage, when the broker closes
/// the channel or cancels the consumer (its queue deleted, a delivery held past the broker's consumer timeout), or
/// when the service stops.
/// </summary>
internal sealed partial class ConsumingSession(
    IConnection connection, IBatchHandler handler, ConsumerOptions options, FailurePublisher failures, QueueMismatches mismatches, ILogger logger)
{
    private readonly QueueNames _names = handler.Names;
    private readonly ChannelGeneration _generation = new();

    // Holds a prefetch of deliveries. After a recovery it can hold stale ones too (see Delivery.IsStale) while the
    // broker hands over a full prefetch again: the delivery handler then waits for room, so that wait ends when the
    // session does, or the client's dispatcher, and with it the whole connection, would wait forever.
    private readonly Channel<Delivery> _buffer = Channel.CreateBounded<Delivery>(new BoundedChannelOptions(options.Prefetch) { SingleReader = true });
    private volatile bool _channelLost;
    private volatile bool _cancelledByBroker;

    /// <summary>
    /// Consumes until <paramref name="paused"/> or <paramref name="stopping"/> (then it returns), or until the broker
    /// closes the channel or cancels the consumer (then it throws, and the caller starts a new session, which declares
    /// the queue again). <paramref name="consuming"/> is called once the broker has registered the consumer.
    /// </summary>
    public async Task RunAsync(Action consuming, CancellationToken paused, CancellationToken stopping)
    {
        mismatches.Record(_names, await Topology.DeclareAsync(connection, _names, stopping));

        // No more batches are taken once this ends; the batch in hand finishes unless the service stops.
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(paused, stopping);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: stopping);
        await channel.BasicQosAsync(prefetchSize: 0, prefetchCount: options.Prefetch, global: false, stopping);

        // Delivery tags name deliveries of one channel instance only: whenever the channel goes down (alone, or with
        // the connection before the client recovers both), the tags handed out so far lose their meaning.
        channel.ChannelShutdownAsync += async (_, args) =>
        {
            _generation.Advance();
            if (connection.IsOpen && args.Initiator != ShutdownInitiator.Application)
            {
                _channelLost = true; // closed by the broker, the connection still up: no recovery will come
                await ended.CancelAsync();
            }
        };

        var consumer = new SessionConsumer(channel, async () =>
        {
            _cancelledByBroker = true;
            await ended.CancelAsync();
        });
        consumer.ReceivedAsync += (_, delivery) =>
        {
            var received = new Delivery(delivery.DeliveryTag, _generation.Current, delivery.BasicProperties,
                delivery.Body.ToArray(), // the client reuses its buffer once this handler returns
                delivery.Redelivered, ConsumerTelemetry.ContextOf(delivery.BasicProperties), _generation);
            return _buffer.Writer.TryWrite(received) ? Task.CompletedTask : WaitForRoomAsync(received, delivery.CancellationToken, ended.Token);
        };
        var consumerTag = await channel.BasicConsumeAsync(_names.Queue, autoAck: false, consumer, stopping);
        consuming();
        LogConsuming(logger, _names.Queue, options.Prefetch, options.BatchSize);

        try
        {
            while (true)
            {
                if (await NextBatchAsync(ended.Token) is not { } batch)
                {
                    // Idle: a consumer the broker dropped without a basic.cancel looks exactly like this (seen on 3.10
                    // when a queue is deleted and declared again at once), so it is renewed. While the connection
                    // recovers, the client restores the consumer itself.
                    if (channel.IsOpen)
                    {
                        await channel.BasicCancelAsync(consumerTag, noWait: false, stopping);
                        consumerTag = await channel.BasicConsumeAsync(_names.Queue, autoAck: false, consumer, stopping);
                    }
                    continue;
                }
                // Stopping mid-batch rolls its transaction back; unacked, the batch is redelivered.
                if (await HandleAsync(channel, batch, stopping))
                {
                    // Handed back after its hold limit in a database outage: what waits in the buffer goes back too
                    // (below), before the broker's consumer timeout, and consuming waits for the database.
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (ended.IsCancellationRequested && !stopping.IsCancellationRequested)
        {
            // Paused by an operator (the batch in hand was finished; what waits in the buffer goes back below), or
            // the channel was lost or the consumer cancelled (said below).
        }
        finally
        {
            // Release a handler waiting for room before anything waits for the dispatcher (cancel, close).
            _buffer.Writer.TryComplete();
            await ended.CancelAsync();
            if (channel.IsOpen)
            {
                if (!_cancelledByBroker)
                {
                    await channel.BasicCancelAsync(consumerTag, noWait: false, CancellationToken.None);
                }
                await ReturnBufferedAsync(channel);
            }
            LogStopped(logger, _names.Queue);
        }
        if (_channelLost && !stopping.IsCancellationRequested)
        {
            throw new InvalidOperationException($"The broker closed the channel consuming {_names.Queue}.");
        }
        if (_cancelledByBroker && !stopping.IsCancellationRequested)
        {
            throw new InvalidOperationException(
                $"The broker cancelled the consumer of {_names.Queue} (the queue was deleted, or a delivery was held past the consumer timeout).");
        }
    }

    /// <summary>
    /// The buffer is full (stale deliveries from before a recovery, plus the broker's redeliveries): wait for room,
    /// but no longer than the session lasts or the client wants this delivery. A delivery given up here stays unacked,
    /// and the broker hands it out again.
    /// </summary>
    private async Task WaitForRoomAsync(Delivery delivery, CancellationToken deliveryCancelled, CancellationToken ended)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(deliveryCancelled, ended);
        try
        {
            await _buffer.Writer.WriteAsync(delivery, either.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            // The session ended: nothing takes it here any more.
        }
    }

    /// <summary>
    /// Hands what was delivered and never taken back to the queue with one nack, not by closing the channel, which
    /// RabbitMQ 4.3 would count as a failed delivery of each.
    /// </summary>
    private async Task ReturnBufferedAsync(IChannel channel)
    {
        ulong last = 0;
        while (_buffer.Reader.TryRead(out var delivery))
        {
            if (delivery.Generation == _generation.Current)
            {
                last = Math.Max(last, delivery.Tag);
            }
        }
        if (last > 0)
        {
            await channel.BasicNackAsync(last, multiple: true, requeue: true, CancellationToken.None);
        }
    }

    /// <summary>The next batch; null when nothing arrived for <see cref="ConsumerOptions.IdleRenewal"/>.</summary>
    private async Task<List<Delivery>?> NextBatchAsync(CancellationToken cancellationToken)
    {
        var reader = _buffer.Reader;
        using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        window.CancelAfter(options.IdleRenewal);
        Delivery first;
        try
        {
            first = await reader.ReadAsync(window.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        var batch = new List<Delivery>(options.BatchSize) { first };
        window.CancelAfter(options.BatchWindow);
        try
        {
            while (batch.Count < options.BatchSize)
            {
                if (reader.TryRead(out var next))
                {
                    batch.Add(next);
                }
                else if (!await reader.WaitToReadAsync(window.Token))
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The window closed: write what there is.
        }
        return batch;
    }

    /// <summary>Writes and acknowledges one batch; true when it was handed back through a database outage.</summary>
    private async Task<bool> HandleAsync(IChannel channel, List<Delivery> batch, CancellationToken stopping)
    {
        // Deliveries of a channel lost since are redelivered on the new one: writing or moving these copies too would
        // leave duplicates in the retry and error queues.
        if (batch.RemoveAll(d => d.IsStale) is > 0 and var stale)
        {
            LogStaleDropped(logger, stale);
            if (batch.Count == 0)
            {
                return false;
            }
        }
        var type = _names.Type;
        ConsumerTelemetry.BatchReceived(_names.Queue, type, batch.Count);
        using var activity = ConsumerTelemetry.StartProcess(_names.Queue, type, batch);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var outcomes = await handler.HandleAsync(batch, stopping);
            var handedBack = outcomes.Contains(Outcome.HandedBack);
            if (await AcknowledgeAsync(channel, batch, outcomes) && !handedBack)
            {
                await failures.WaitUntilMovesPossibleAsync(stopping); // what went back comes round again at once
            }
            ConsumerTelemetry.BatchProcessed(activity, _names.Queue, type, started, failure: null);
            return handedBack;
        }
        catch (Exception e)
        {
            ConsumerTelemetry.BatchProcessed(activity, _names.Queue, type, started, e);
            throw;
        }
    }

    /// <summary>
    /// One multiple-ack up to the batch's last tag, unless the channel went down since (then the broker redelivers).
    /// Messages the broker did not let move go back to the queue first (one nack each, which RabbitMQ 4.3 does not
    /// count as a failed delivery), so the multiple-ack never covers them. Returns whether any went back.
    /// </summary>
    private async Task<bool> AcknowledgeAsync(IChannel channel, List<Delivery> batch, Outcome[] outcomes)
    {
        var current = _generation.Current;
        if (!batch.Any(d => d.Generation == current) || !channel.IsOpen)
        {
            LogNotAcknowledged(logger, batch.Count);
            return false;
        }
        var (returned, handedBack) = (0, 0);
        ulong? last = null;
        for (var i = 0; i < batch.Count; i++)
        {
            if (batch[i].Generation != current || outcomes[i] == Outcome.Stale)
            {
                continue;
            }
            if (outcomes[i] is Outcome.ReturnToQueue or Outcome.HandedBack)
            {
                await channel.BasicNackAsync(batch[i].Tag, multiple: false, requeue: true, CancellationToken.None);
                if (outcomes[i] == Outcome.HandedBack)
                {
                    handedBack++;
                }
                else
                {
                    returned++;
                }
            }
            else
            {
                last = batch[i].Tag;
            }
        }
        if (returned > 0)
        {
            LogReturned(logger, returned);
        }
        if (handedBack > 0)
        {
            LogHandedBack(logger, handedBack, _names.Queue);
        }
        // The broker refuses a multiple-ack whose own tag is no longer outstanding: end it at the last one kept.
        if (last is { } tag)
        {
            await channel.BasicAckAsync(tag, multiple: true, CancellationToken.None);
        }
        return returned + handedBack > 0;
    }

    [LoggerMessage(LogLevel.Information, "Consuming {Queue} (prefetch {Prefetch}, batches of up to {BatchSize}).")]
    private static partial void LogConsuming(ILogger logger, string queue, ushort prefetch, int batchSize);

    [LoggerMessage(LogLevel.Information, "Stopped consuming {Queue}.")]
    private static partial void LogStopped(ILogger logger, string queue);

    [LoggerMessage(LogLevel.Information, "Dropped {Count} deliveries of a channel lost since: the broker delivers them again.")]
    private static partial void LogStaleDropped(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "{Count} failed messages could not be moved (the broker blocks publishing): they went back to the work queue.")]
    private static partial void LogReturned(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "{Count} messages held through a database outage were handed back to {Queue}: consuming waits for the database.")]
    private static partial void LogHandedBack(ILogger logger, int count, string queue);

    [LoggerMessage(LogLevel.Information, "A batch of {Count} messages straddled a channel or connection loss: not acknowledged; the broker redelivers it and the store ignores what it already has.")]
    private static partial void LogNotAcknowledged(ILogger logger, int count);
}

/// <summary>
/// Tells a basic.cancel the broker sent (its queue deleted, or on RabbitMQ 4.3 a delivery held past the consumer
/// timeout) from the cancel-ok of the session's own cancel and from a channel shutdown, which the client's
/// <c>UnregisteredAsync</c> event reports alike.
/// </summary>
internal sealed class SessionConsumer(IChannel channel, Func<Task> cancelledByBroker) : AsyncEventingBasicConsumer(channel)
{
    public override async Task HandleBasicCancelAsync(string consumerTag, CancellationToken cancellationToken = default)
    {
        await base.HandleBasicCancelAsync(consumerTag, cancellationToken);
        await cancelledByBroker();
    }
}
