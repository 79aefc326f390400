using System.Threading.Channels;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Messaging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Reads the work queue in batches: up to <see cref="ConsumerOptions.BatchSize"/> messages or
/// <see cref="ConsumerOptions.BatchWindow"/>, written in one transaction and acknowledged after the commit with one
/// multiple-ack. One batch is in flight on the channel at a time, so that multiple-ack never covers a message whose
/// batch has not committed. Messages that cannot be orders go to the error queue (confirmed first, acked second).
/// </summary>
public sealed partial class OrderConsumer(
    IConnection connection,
    IOrderStore store,
    DeadLetterPublisher deadLetters,
    IOptions<ConsumerOptions> consumerOptions,
    IOptions<TopologyOptions> topologyOptions,
    ILogger<OrderConsumer> logger) : BackgroundService
{
    private readonly ConsumerOptions _options = consumerOptions.Value;
    private readonly TopologyOptions _topology = topologyOptions.Value;
    private int _generation;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Bounded by the prefetch: the broker never hands over more, so writing to it never waits.
        var buffer = Channel.CreateBounded<Delivery>(new BoundedChannelOptions(_options.Prefetch) { SingleReader = true });

        await using var channel = await connection.CreateChannelAsync(cancellationToken: stoppingToken);
        await Topology.DeclareAsync(channel, _topology, stoppingToken);
        await channel.BasicQosAsync(prefetchSize: 0, prefetchCount: _options.Prefetch, global: false, stoppingToken);

        // Before the client recovers the connection (and re-registers this consumer), every delivery tag it handed
        // out so far becomes meaningless: start a new generation.
        connection.ConnectionShutdownAsync += OnShutdownAsync;
        channel.ChannelShutdownAsync += OnShutdownAsync;

        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) => buffer.Writer.WriteAsync(new Delivery(
            delivery.DeliveryTag, Volatile.Read(ref _generation), delivery.BasicProperties,
            delivery.Body.ToArray(), // the client reuses its buffer once this handler returns
            delivery.Redelivered), stoppingToken).AsTask();
        var consumerTag = await channel.BasicConsumeAsync(_topology.Queue, autoAck: false, consumer, stoppingToken);
        LogConsuming(logger, _topology.Queue, _options.Prefetch, _options.BatchSize);

        var writeWithRetries = WriteRetries(stoppingToken);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var batch = await NextBatchAsync(buffer.Reader, stoppingToken);
                // Stopping mid-batch rolls the transaction back; the batch stays unacked and the broker redelivers it.
                await HandleAsync(channel, batch, writeWithRetries, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down: what is buffered but not written stays unacked and the broker hands it to another consumer.
        }
        finally
        {
            connection.ConnectionShutdownAsync -= OnShutdownAsync;
            if (channel.IsOpen)
            {
                await channel.BasicCancelAsync(consumerTag, noWait: false, CancellationToken.None);
            }
            LogStopped(logger, _topology.Queue);
        }
    }

    private Task OnShutdownAsync(object sender, ShutdownEventArgs args)
    {
        Interlocked.Increment(ref _generation);
        return Task.CompletedTask;
    }

    private async Task<List<Delivery>> NextBatchAsync(ChannelReader<Delivery> reader, CancellationToken stoppingToken)
    {
        var batch = new List<Delivery>(_options.BatchSize) { await reader.ReadAsync(stoppingToken) };
        using var window = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
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
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
            // The window closed: write what there is.
        }
        return batch;
    }

    private async Task HandleAsync(IChannel channel, List<Delivery> batch, ResiliencePipeline writeWithRetries, CancellationToken stoppingToken)
    {
        var orders = new List<ReceivedOrder>(batch.Count);
        foreach (var delivery in batch)
        {
            if (OrderDecoder.Decode(delivery, out var problem, out var exception) is { } order)
            {
                orders.Add(order);
            }
            else
            {
                LogDeadLettered(logger, delivery.Properties.MessageId, problem!);
                await deadLetters.PublishAsync(delivery, problem!, exception, CancellationToken.None);
            }
        }

        if (orders.Count > 0)
        {
            var inserted = await writeWithRetries.ExecuteAsync(
                static async (state, ct) => await state.store.InsertAsync(state.orders, ct), (store, orders), stoppingToken);
            LogBatchWritten(logger, orders.Count, inserted);
        }

        await AcknowledgeAsync(channel, batch);
    }

    /// <summary>One multiple-ack up to the batch's last tag, unless a recovery happened since (then the broker redelivers).</summary>
    private async Task AcknowledgeAsync(IChannel channel, List<Delivery> batch)
    {
        var generation = Volatile.Read(ref _generation);
        var last = batch.LastOrDefault(d => d.Generation == generation);
        if (last is null || !channel.IsOpen)
        {
            LogNotAcknowledged(logger, batch.Count);
            return;
        }
        await channel.BasicAckAsync(last.Tag, multiple: true, CancellationToken.None);
    }

    /// <summary>
    /// The database being away is waited out: the batch stays unacked (safe in the broker) and is written again with
    /// jittered exponential backoff until it commits or the service stops.
    /// </summary>
    private ResiliencePipeline WriteRetries(CancellationToken stoppingToken) => new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException || !stoppingToken.IsCancellationRequested),
            MaxRetryAttempts = int.MaxValue,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(200),
            MaxDelay = _options.MaxRetryDelay,
            OnRetry = args =>
            {
                LogWriteFailed(logger, args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception!);
                return default;
            },
        })
        .Build();

    [LoggerMessage(LogLevel.Information, "Consuming {Queue} (prefetch {Prefetch}, batches of up to {BatchSize}).")]
    private static partial void LogConsuming(ILogger logger, string queue, ushort prefetch, int batchSize);

    [LoggerMessage(LogLevel.Information, "Stopped consuming {Queue}.")]
    private static partial void LogStopped(ILogger logger, string queue);

    [LoggerMessage(LogLevel.Debug, "Wrote a batch of {Count} orders ({Inserted} new).")]
    private static partial void LogBatchWritten(ILogger logger, int count, int inserted);

    [LoggerMessage(LogLevel.Warning, "Message {MessageId} moved to the error queue: {Reason}")]
    private static partial void LogDeadLettered(ILogger logger, string? messageId, string reason);

    [LoggerMessage(LogLevel.Warning, "Writing a batch failed (attempt {Attempt}); next try in {Delay}.")]
    private static partial void LogWriteFailed(ILogger logger, int attempt, TimeSpan delay, Exception exception);

    [LoggerMessage(LogLevel.Information, "A batch of {Count} messages straddled a connection recovery: not acknowledged; the broker redelivers it and the store ignores what it already has.")]
    private static partial void LogNotAcknowledged(ILogger logger, int count);
}
