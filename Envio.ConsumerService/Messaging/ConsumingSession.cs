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
/// when the service stops. At a pause it cancels its consumer first and then writes what it was already handed (at
/// most a prefetch), so a pause returns nothing to the queue; whatever it does not write goes back with one
/// <c>basic.nack</c>, never by closing the channel: both would count toward a quorum queue's delivery limit.
/// </summary>
internal sealed partial class ConsumingSession(
    IConnection connection, IBatchHandler handler, ConsumerOptions options, FailurePublisher failures, QueueMismatches mismatches, ILogger logger)
{
    /// <summary>How long a cancel waits for the client to dispatch its cancel-ok.</summary>
    private static readonly TimeSpan CancelOkWait = TimeSpan.FromSeconds(5);

    private readonly QueueNames _names = handler.Names;
    private readonly ChannelGeneration _generation = new();

    // Holds a prefetch of deliveries. After a recovery it can hold stale ones too (see Delivery.IsStale) while the
    // broker hands over a full prefetch again: the delivery handler then waits for room, so that wait ends when the
    // session does, or the client's dispatcher, and with it the whole connection, would wait forever.
    private readonly Channel<Delivery> _buffer = Channel.CreateBounded<Delivery>(new BoundedChannelOptions(options.Prefetch) { SingleReader = true });
    private readonly Unacknowledged _unacknowledged = new();
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
            _unacknowledged.Received(delivery.DeliveryTag, _generation.Current);
            var received = new Delivery(delivery.DeliveryTag, _generation.Current, delivery.BasicProperties,
                delivery.Body.ToArray(), // the client reuses its buffer once this handler returns
                delivery.Redelivered, ConsumerTelemetry.ContextOf(delivery.BasicProperties), _generation);
            return _buffer.Writer.TryWrite(received) ? Task.CompletedTask : WaitForRoomAsync(received, delivery.CancellationToken, ended.Token);
        };
        var consumerTag = await channel.BasicConsumeAsync(_names.Queue, autoAck: false, consumer, stopping);
        consuming();
        LogConsuming(logger, _names.Queue, options.Prefetch, options.BatchSize);

        var handedBack = false;
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
                    handedBack = true;
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (ended.IsCancellationRequested && !stopping.IsCancellationRequested)
        {
            // Paused by an operator (the batch in hand was finished; what was delivered is written below), or the
            // channel was lost or the consumer cancelled (said below).
        }
        finally
        {
            // A handler waiting for room was released when `ended` was cancelled, before anything waits for the dispatcher.
            await ended.CancelAsync();
            var drain = paused.IsCancellationRequested && !stopping.IsCancellationRequested && !_channelLost && !_cancelledByBroker && !handedBack;
            if (channel.IsOpen && !_cancelledByBroker)
            {
                await CancelAsync(channel, consumer, consumerTag);
            }
            _buffer.Writer.TryComplete();
            try
            {
                if (drain && channel.IsOpen)
                {
                    await DrainAsync(channel, stopping);
                }
            }
            finally
            {
                if (channel.IsOpen)
                {
                    await ReturnUnacknowledgedAsync(channel);
                }
                LogStopped(logger, _names.Queue);
            }
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
    /// Cancels the consumer and waits until the client has dispatched the cancel-ok, which comes after every delivery
    /// the broker sent before it: from then on nothing more arrives, and what arrived is in the buffer.
    /// </summary>
    private async Task CancelAsync(IChannel channel, SessionConsumer consumer, string consumerTag)
    {
        try
        {
            var unregistered = consumer.ExpectCancelOk();
            await channel.BasicCancelAsync(consumerTag, noWait: false, CancellationToken.None);
            await unregistered.WaitAsync(CancelOkWait);
        }
        catch (Exception e) when (e is TimeoutException or RabbitMQ.Client.Exceptions.AlreadyClosedException or RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            LogCancelUnconfirmed(logger, _names.Queue, e.Message);
        }
    }

    /// <summary>
    /// At a pause: writes, in batches, what the broker handed over before the consumer was cancelled. Handing it back
    /// instead would count one more delivery of each toward a quorum queue's delivery limit (RabbitMQ 3.x and 4.0–4.2
    /// count a nack too), so orders caught in the prefetch at many pauses would end in the error queue.
    /// </summary>
    private async Task DrainAsync(IChannel channel, CancellationToken stopping)
    {
        var written = 0;
        while (!stopping.IsCancellationRequested && channel.IsOpen)
        {
            var batch = new List<Delivery>(options.BatchSize);
            while (batch.Count < options.BatchSize && _buffer.Reader.TryRead(out var delivery))
            {
                batch.Add(delivery);
            }
            if (batch.Count == 0 || await HandleAsync(channel, batch, stopping))
            {
                break; // all written, or handed back through a database outage (the rest goes back below)
            }
            written += batch.Count;
        }
        if (written > 0)
        {
            LogDrained(logger, written, _names.Queue);
        }
    }

    /// <summary>
    /// Hands whatever this channel holds unacknowledged back to the queue with one multiple nack, not by closing the
    /// channel, which RabbitMQ 4.3 would count as a failed delivery of each.
    /// </summary>
    private async Task ReturnUnacknowledgedAsync(IChannel channel)
    {
        while (_buffer.Reader.TryRead(out _))
        {
            // Covered by the nack below.
        }
        if (_unacknowledged.Highest(_generation.Current) is { } last)
        {
            await channel.BasicNackAsync(last, multiple: true, requeue: true, CancellationToken.None);
            _unacknowledged.Settled(last, _generation.Current);
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
        catch (OperationCanceledException)
        {
            // The window closed, or the session ended mid-fill: write what there is rather than drop it to the channel.
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
        _unacknowledged.Settled(batch.Where(d => d.Generation == current).Max(d => d.Tag), current);
        return returned + handedBack > 0;
    }

    [LoggerMessage(LogLevel.Information, "Consuming {Queue} (prefetch {Prefetch}, batches of up to {BatchSize}).")]
    private static partial void LogConsuming(ILogger logger, string queue, ushort prefetch, int batchSize);

    [LoggerMessage(LogLevel.Information, "Wrote the {Count} messages of {Queue} delivered before the pause.")]
    private static partial void LogDrained(ILogger logger, int count, string queue);

    [LoggerMessage(LogLevel.Warning, "The consumer of {Queue} was cancelled without the broker's answer ({Reason}): what it holds goes back with a nack.")]
    private static partial void LogCancelUnconfirmed(ILogger logger, string queue, string reason);

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
    private TaskCompletionSource _cancelOk = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Call before a cancel: completes when the client dispatches its cancel-ok, which it does after every delivery
    /// the broker sent before it.
    /// </summary>
    public Task ExpectCancelOk()
    {
        var expected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _cancelOk, expected);
        return expected.Task;
    }

    protected override async Task OnCancelAsync(string[] consumerTags, CancellationToken cancellationToken = default)
    {
        await base.OnCancelAsync(consumerTags, cancellationToken);
        Volatile.Read(ref _cancelOk).TrySetResult();
    }

    public override async Task HandleBasicCancelAsync(string consumerTag, CancellationToken cancellationToken = default)
    {
        await base.HandleBasicCancelAsync(consumerTag, cancellationToken);
        await cancelledByBroker();
    }
}
