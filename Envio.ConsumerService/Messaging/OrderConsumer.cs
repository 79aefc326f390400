using System.Diagnostics;
using System.Threading.Channels;
using Envio.Contracts.Messaging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Reads the work queue in batches: up to <see cref="ConsumerOptions.BatchSize"/> messages or
/// <see cref="ConsumerOptions.BatchWindow"/>, handed to <see cref="BatchWriter"/>, and acknowledged with one
/// multiple-ack once every message of the batch is stored or moved (to a retry or the error queue, confirmed).
/// One batch is in flight per channel, so that a multiple-ack never covers a message whose batch is not done; more
/// batches in flight means more channels (<see cref="ConsumerOptions.Channels"/>), each with its own prefetch and
/// delivery tags. Messages that cannot be orders go straight to the error queue.
/// </summary>
public sealed partial class OrderConsumer(
    IConnection connection,
    OrderDecoder decoder,
    BatchWriter writer,
    FailurePublisher failures,
    ConsumingSwitch consumingSwitch,
    IOptions<ConsumerOptions> consumerOptions,
    IOptions<TopologyOptions> topologyOptions,
    ILogger<OrderConsumer> logger) : BackgroundService
{
    private readonly ConsumerOptions _options = consumerOptions.Value;
    private readonly TopologyOptions _topology = topologyOptions.Value;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, Math.Max(1, _options.Channels)).Select(_ => ConsumeUntilStoppedAsync(stoppingToken)));

    private async Task ConsumeUntilStoppedAsync(CancellationToken stoppingToken)
    {
        // The client recovers the connection and this consumer by itself after a network or broker failure; a
        // channel the broker closed on its own is not recovered, so consuming starts over on a new one.
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await consumingSwitch.WaitUntilResumedAsync(stoppingToken);
                await ConsumeAsync(consumingSwitch.PausedToken, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // Shutting down: what is buffered but not written stays unacked and the broker hands it to another consumer.
            }
            catch (Exception e)
            {
                LogConsumeFailed(logger, _options.ResubscribeDelay, e);
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

    /// <summary>Consumes until the channel is lost, or until <paramref name="paused"/> (then it returns).</summary>
    private async Task ConsumeAsync(CancellationToken paused, CancellationToken stoppingToken)
    {
        if ((await Topology.DeclareAsync(connection, _topology, stoppingToken)).ErrorQueueLimitWarning is { } warning)
        {
            LogErrorQueueLimit(logger, warning);
        }

        // Holds a prefetch of deliveries. After a recovery it can hold stale ones too (see Delivery.IsStale) while the
        // broker hands over a full prefetch again: the delivery handler then waits for room, so that wait must end when
        // consuming does (below), or the client's dispatcher, and with it the whole connection, would wait forever.
        var buffer = Channel.CreateBounded<Delivery>(new BoundedChannelOptions(_options.Prefetch) { SingleReader = true });
        using var consuming = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        using var channelLost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        using var batchesEnd = CancellationTokenSource.CreateLinkedTokenSource(channelLost.Token, paused);
        var generation = new ChannelGeneration();

        await using var channel = await connection.CreateChannelAsync(cancellationToken: stoppingToken);
        await channel.BasicQosAsync(prefetchSize: 0, prefetchCount: _options.Prefetch, global: false, stoppingToken);

        // Delivery tags name deliveries of one channel instance only: whenever the channel goes down (alone, or with
        // the connection before the client recovers both), the tags handed out so far lose their meaning.
        channel.ChannelShutdownAsync += (_, args) =>
        {
            generation.Advance();
            if (connection.IsOpen && args.Initiator != ShutdownInitiator.Application)
            {
                channelLost.Cancel(); // closed by the broker, the connection still up: no recovery will come
            }
            return Task.CompletedTask;
        };

        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            var received = new Delivery(delivery.DeliveryTag, generation.Current, delivery.BasicProperties,
                delivery.Body.ToArray(), // the client reuses its buffer once this handler returns
                delivery.Redelivered, ConsumerTelemetry.ContextOf(delivery.BasicProperties), generation);
            return buffer.Writer.TryWrite(received) ? Task.CompletedTask : WaitForRoomAsync(buffer.Writer, received, delivery.CancellationToken, consuming.Token);
        };
        var consumerTag = await channel.BasicConsumeAsync(_topology.Queue, autoAck: false, consumer, stoppingToken);
        LogConsuming(logger, _topology.Queue, _options.Prefetch, _options.BatchSize);

        try
        {
            while (true)
            {
                var batch = await NextBatchAsync(buffer.Reader, batchesEnd.Token);
                // Stopping mid-batch rolls its transaction back; unacked, the batch is redelivered.
                await HandleAsync(channel, generation, batch, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (paused.IsCancellationRequested && !channelLost.IsCancellationRequested)
        {
            // Paused by an operator: the batch in hand was finished; what waits in the buffer goes back below.
        }
        catch (OperationCanceledException) when (channelLost.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            throw new InvalidOperationException($"The broker closed the channel consuming {_topology.Queue}.");
        }
        finally
        {
            // Release a handler waiting for room before anything waits for the dispatcher (cancel, close).
            buffer.Writer.TryComplete();
            await consuming.CancelAsync();
            if (channel.IsOpen)
            {
                await channel.BasicCancelAsync(consumerTag, noWait: false, CancellationToken.None);
                await ReturnBufferedAsync(channel, generation, buffer.Reader);
            }
            LogStopped(logger, _topology.Queue);
        }
    }

    /// <summary>
    /// The buffer is full (stale deliveries from before a recovery, plus the broker's redeliveries): wait for room,
    /// but no longer than consuming lasts or the client wants this delivery. A delivery given up here stays unacked,
    /// and the broker hands it out again.
    /// </summary>
    private static async Task WaitForRoomAsync(ChannelWriter<Delivery> writer, Delivery delivery, CancellationToken deliveryCancelled, CancellationToken consumingEnded)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(deliveryCancelled, consumingEnded);
        try
        {
            await writer.WriteAsync(delivery, either.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            // Consuming ended: nothing takes it here any more.
        }
    }

    /// <summary>
    /// Hands what was delivered and never taken back to the queue with one nack, not by closing the channel, which
    /// RabbitMQ 4.3 would count as a failed delivery of each.
    /// </summary>
    private static async Task ReturnBufferedAsync(IChannel channel, ChannelGeneration generation, ChannelReader<Delivery> buffer)
    {
        ulong last = 0;
        while (buffer.TryRead(out var delivery))
        {
            if (delivery.Generation == generation.Current)
            {
                last = Math.Max(last, delivery.Tag);
            }
        }
        if (last > 0)
        {
            await channel.BasicNackAsync(last, multiple: true, requeue: true, CancellationToken.None);
        }
    }

    private async Task<List<Delivery>> NextBatchAsync(ChannelReader<Delivery> reader, CancellationToken cancellationToken)
    {
        var batch = new List<Delivery>(_options.BatchSize) { await reader.ReadAsync(cancellationToken) };
        using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        window.CancelAfter(_options.BatchWindow);
        try
        {
            while (batch.Count < _options.BatchSize)
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

    private async Task HandleAsync(IChannel channel, ChannelGeneration generation, List<Delivery> batch, CancellationToken stoppingToken)
    {
        // Deliveries of a channel lost since are redelivered on the new one: writing or moving these copies too would
        // leave duplicates in the retry and error queues.
        if (batch.RemoveAll(d => d.IsStale) is > 0 and var stale)
        {
            LogStaleDropped(logger, stale);
            if (batch.Count == 0)
            {
                return;
            }
        }
        ConsumerTelemetry.BatchReceived(_topology.Queue, batch.Count);
        using var activity = ConsumerTelemetry.StartProcess(_topology.Queue, batch);
        var started = Stopwatch.GetTimestamp();
        try
        {
            await DecodeWriteAndAcknowledgeAsync(channel, generation, batch, stoppingToken);
            ConsumerTelemetry.BatchProcessed(activity, _topology.Queue, started, failure: null);
        }
        catch (Exception e)
        {
            ConsumerTelemetry.BatchProcessed(activity, _topology.Queue, started, e);
            throw;
        }
    }

    private async Task DecodeWriteAndAcknowledgeAsync(IChannel channel, ChannelGeneration generation, List<Delivery> batch, CancellationToken stoppingToken)
    {
        var orders = new List<(Delivery, Persistence.ReceivedOrder)>(batch.Count);
        foreach (var delivery in batch)
        {
            if (decoder.Decode(delivery, out var problem, out var exception) is { } order)
            {
                orders.Add((delivery, order));
            }
            else
            {
                if (await failures.DeadLetterAsync(delivery, problem!, exception, stoppingToken) == Move.DeadLettered)
                {
                    ConsumerTelemetry.MessageDeadLettered(ConsumerTelemetry.DeadLetterReason.Invalid);
                    LogDeadLettered(logger, delivery.Properties.MessageId, delivery.Properties.CorrelationId, problem!);
                }
            }
        }

        await writer.WriteAsync(orders, stoppingToken);
        if (await AcknowledgeAsync(channel, generation, batch))
        {
            await failures.WaitUntilMovesPossibleAsync(stoppingToken); // what went back comes round again at once
        }
    }

    /// <summary>
    /// One multiple-ack up to the batch's last tag, unless the channel went down since (then the broker redelivers).
    /// Messages the broker did not let move go back to the queue first (one nack each, which RabbitMQ 4.3 does not
    /// count as a failed delivery), so the multiple-ack never covers them. Returns whether any went back.
    /// </summary>
    private async Task<bool> AcknowledgeAsync(IChannel channel, ChannelGeneration generation, List<Delivery> batch)
    {
        var current = generation.Current;
        if (!batch.Any(d => d.Generation == current) || !channel.IsOpen)
        {
            LogNotAcknowledged(logger, batch.Count);
            return false;
        }
        var returned = batch.Where(d => d.ReturnToQueue && d.Generation == current).ToList();
        foreach (var delivery in returned)
        {
            await channel.BasicNackAsync(delivery.Tag, multiple: false, requeue: true, CancellationToken.None);
        }
        if (returned.Count > 0)
        {
            LogReturned(logger, returned.Count);
        }
        // The broker refuses a multiple-ack whose own tag is no longer outstanding: end it at the last one kept.
        if (batch.LastOrDefault(d => d.Generation == current && !d.ReturnToQueue) is { } last)
        {
            await channel.BasicAckAsync(last.Tag, multiple: true, CancellationToken.None);
        }
        return returned.Count > 0;
    }

    [LoggerMessage(LogLevel.Information, "Consuming {Queue} (prefetch {Prefetch}, batches of up to {BatchSize}).")]
    private static partial void LogConsuming(ILogger logger, string queue, ushort prefetch, int batchSize);

    [LoggerMessage(LogLevel.Information, "Stopped consuming {Queue}.")]
    private static partial void LogStopped(ILogger logger, string queue);

    [LoggerMessage(LogLevel.Warning, "Consuming failed; starting over in {Delay}.")]
    private static partial void LogConsumeFailed(ILogger logger, TimeSpan delay, Exception exception);

    // The reason names the fields at fault, never their values; the body is never logged.
    [LoggerMessage(LogLevel.Warning, "Message {MessageId} (correlation {CorrelationId}) moved to the error queue: {Reason}")]
    private static partial void LogDeadLettered(ILogger logger, string? messageId, string? correlationId, string reason);

    [LoggerMessage(LogLevel.Warning, "{Warning}")]
    private static partial void LogErrorQueueLimit(ILogger logger, string warning);

    [LoggerMessage(LogLevel.Information, "Dropped {Count} deliveries of a channel lost since: the broker delivers them again.")]
    private static partial void LogStaleDropped(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "{Count} failed messages could not be moved (the broker blocks publishing): they went back to the work queue.")]
    private static partial void LogReturned(ILogger logger, int count);

    [LoggerMessage(LogLevel.Information, "A batch of {Count} messages straddled a channel or connection loss: not acknowledged; the broker redelivers it and the store ignores what it already has.")]
    private static partial void LogNotAcknowledged(ILogger logger, int count);
}
