using System.Diagnostics;
using System.Runtime.CompilerServices;
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
                await ConsumeAsync(stoppingToken);
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

    private async Task ConsumeAsync(CancellationToken stoppingToken)
    {
        // Bounded by the prefetch: the broker never hands over more, so writing to it never waits.
        var buffer = Channel.CreateBounded<Delivery>(new BoundedChannelOptions(_options.Prefetch) { SingleReader = true });
        using var channelLost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var generation = new StrongBox<int>(0);

        await using var channel = await connection.CreateChannelAsync(cancellationToken: stoppingToken);
        await Topology.DeclareAsync(channel, _topology, stoppingToken);
        await channel.BasicQosAsync(prefetchSize: 0, prefetchCount: _options.Prefetch, global: false, stoppingToken);

        // Delivery tags name deliveries of one channel instance only: whenever the channel goes down (alone, or with
        // the connection before the client recovers both), the tags handed out so far lose their meaning.
        channel.ChannelShutdownAsync += (_, args) =>
        {
            Interlocked.Increment(ref generation.Value);
            if (connection.IsOpen && args.Initiator != ShutdownInitiator.Application)
            {
                channelLost.Cancel(); // closed by the broker, the connection still up: no recovery will come
            }
            return Task.CompletedTask;
        };

        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) => buffer.Writer.WriteAsync(new Delivery(
            delivery.DeliveryTag, Volatile.Read(ref generation.Value), delivery.BasicProperties,
            delivery.Body.ToArray(), // the client reuses its buffer once this handler returns
            delivery.Redelivered, ConsumerTelemetry.ContextOf(delivery.BasicProperties)), stoppingToken).AsTask();
        var consumerTag = await channel.BasicConsumeAsync(_topology.Queue, autoAck: false, consumer, stoppingToken);
        LogConsuming(logger, _topology.Queue, _options.Prefetch, _options.BatchSize);

        try
        {
            while (true)
            {
                var batch = await NextBatchAsync(buffer.Reader, channelLost.Token);
                // Stopping mid-batch rolls its transaction back; unacked, the batch is redelivered.
                await HandleAsync(channel, generation, batch, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (channelLost.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            throw new InvalidOperationException($"The broker closed the channel consuming {_topology.Queue}.");
        }
        finally
        {
            if (channel.IsOpen)
            {
                await channel.BasicCancelAsync(consumerTag, noWait: false, CancellationToken.None);
            }
            LogStopped(logger, _topology.Queue);
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

    private async Task HandleAsync(IChannel channel, StrongBox<int> generation, List<Delivery> batch, CancellationToken stoppingToken)
    {
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

    private async Task DecodeWriteAndAcknowledgeAsync(IChannel channel, StrongBox<int> generation, List<Delivery> batch, CancellationToken stoppingToken)
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
                await failures.DeadLetterAsync(delivery, problem!, exception, stoppingToken);
                ConsumerTelemetry.MessageDeadLettered(ConsumerTelemetry.DeadLetterReason.Invalid);
                LogDeadLettered(logger, delivery.Properties.MessageId, delivery.Properties.CorrelationId, problem!);
            }
        }

        await writer.WriteAsync(orders, stoppingToken);
        await AcknowledgeAsync(channel, generation, batch);
    }

    /// <summary>One multiple-ack up to the batch's last tag, unless the channel went down since (then the broker redelivers).</summary>
    private async Task AcknowledgeAsync(IChannel channel, StrongBox<int> generation, List<Delivery> batch)
    {
        var current = Volatile.Read(ref generation.Value);
        var last = batch.LastOrDefault(d => d.Generation == current);
        if (last is null || !channel.IsOpen)
        {
            LogNotAcknowledged(logger, batch.Count);
            return;
        }
        await channel.BasicAckAsync(last.Tag, multiple: true, CancellationToken.None);
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

    [LoggerMessage(LogLevel.Information, "A batch of {Count} messages straddled a channel or connection loss: not acknowledged; the broker redelivers it and the store ignores what it already has.")]
    private static partial void LogNotAcknowledged(ILogger logger, int count);
}
