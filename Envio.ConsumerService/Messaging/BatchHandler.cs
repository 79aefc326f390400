using Envio.ConsumerService.Persistence;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Options;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// The one step of consuming that knows the type of its queue's data objects: it decodes a batch of deliveries,
/// moves what cannot be one to the error queue (and defers what a newer build wrote), writes the rest, and says what
/// became of each delivery. Everything around it (channels, batches, acknowledgements, pauses) moves bytes.
/// </summary>
public interface IBatchHandler
{
    QueueNames Names { get; }

    /// <summary>The outcome of each delivery of <paramref name="batch"/>, in its order.</summary>
    Task<Outcome[]> HandleAsync(IReadOnlyList<Delivery> batch, CancellationToken cancellationToken);
}

/// <summary>One <see cref="IBatchHandler"/> per registered type, built once at start-up with its table writer.</summary>
public sealed class BatchHandlers(
    TableMaps maps, IStoreWriters writers, MessageDecoder decoder, BatchWriter writer, FailurePublisher failures,
    IOptions<TopologyOptions> topology, IOptions<ConsumerOptions> options, ILoggerFactory loggers)
{
    /// <summary>The handlers of the types this consumer takes (<see cref="ConsumerOptions.Types"/>; all when none are named).</summary>
    public IReadOnlyList<IBatchHandler> All { get; } = [.. TypesOf(options.Value).Select(type => type.Accept(new Build(
        maps, writers, decoder, writer, failures, topology.Value, loggers.CreateLogger<BatchHandlers>())))];

    private static IEnumerable<DataObjectType> TypesOf(ConsumerOptions options) => options.Types.Count == 0
        ? DataObjectTypes.Registered
        : options.Types.Select(name => DataObjectTypes.Registered.ByName(name) ?? throw new InvalidOperationException(
            $"{ConsumerOptions.SectionName}:Types names '{name}', which is no registered type of data object ({string.Join(", ", DataObjectTypes.Registered.Select(t => t.Name))})."));

    private sealed class Build(
        TableMaps maps, IStoreWriters writers, MessageDecoder decoder, BatchWriter writer, FailurePublisher failures, TopologyOptions topology, ILogger logger)
        : IDataObjectTypeVisitor<IBatchHandler>
    {
        public IBatchHandler Visit<T>(DataObjectType<T> type) where T : class =>
            new BatchHandler<T>(type, topology.NamesOf(type), writers.WriterOf(maps.For(type)), decoder, writer, failures, logger);
    }
}

internal sealed partial class BatchHandler<T>(
    DataObjectType<T> type, QueueNames names, ITableWriter<T> table, MessageDecoder decoder, BatchWriter writer, FailurePublisher failures, ILogger logger)
    : IBatchHandler where T : class
{
    public QueueNames Names => names;

    public async Task<Outcome[]> HandleAsync(IReadOnlyList<Delivery> batch, CancellationToken cancellationToken)
    {
        var outcomes = new Outcome[batch.Count];
        var decoded = new List<(Delivery, Received<T>)>(batch.Count);
        var positions = new List<int>(batch.Count);
        for (var i = 0; i < batch.Count; i++)
        {
            var delivery = batch[i];
            var result = decoder.Decode(type, delivery);
            if (result.Value is { } received)
            {
                decoded.Add((delivery, received));
                positions.Add(i);
            }
            else if (result.IsNewer)
            {
                var move = await failures.DeferAsync(names, delivery, result.Problem!, cancellationToken);
                if (move == Move.Deferred)
                {
                    ConsumerTelemetry.MessageDeferred(type);
                    LogDeferred(logger, delivery.Properties.MessageId, result.Problem!);
                }
                outcomes[i] = move.OutcomeOf();
            }
            else
            {
                var move = await failures.DeadLetterAsync(names, delivery, result.Problem!, result.Exception, cancellationToken);
                if (move == Move.DeadLettered)
                {
                    ConsumerTelemetry.MessageDeadLettered(type, ConsumerTelemetry.DeadLetterReason.Invalid);
                    LogDeadLettered(logger, delivery.Properties.MessageId, delivery.Properties.CorrelationId, result.Problem!);
                }
                outcomes[i] = move.OutcomeOf();
            }
        }

        var written = await writer.WriteAsync(table, names, decoded, cancellationToken);
        for (var i = 0; i < written.Length; i++)
        {
            outcomes[positions[i]] = written[i];
        }
        return outcomes;
    }

    // The reason names the fields at fault, never their values; the body is never logged.
    [LoggerMessage(LogLevel.Warning, "Message {MessageId} (correlation {CorrelationId}) moved to the error queue: {Reason}")]
    private static partial void LogDeadLettered(ILogger logger, string? messageId, string? correlationId, string reason);

    [LoggerMessage(LogLevel.Warning, "Message {MessageId} deferred: {Reason}")]
    private static partial void LogDeferred(ILogger logger, string? messageId, string reason);
}
