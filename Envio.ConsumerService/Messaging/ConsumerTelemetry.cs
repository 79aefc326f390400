using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using RabbitMQ.Client;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// The consumer's spans and instruments. The RabbitMQ client makes a <c>deliver</c> span per message (source
/// <c>RabbitMQ.Client.Subscriber</c>), parented to the publisher's span through the <c>traceparent</c> header; a
/// batch gathers many messages, so its <c>process</c> span links to every one of them (and takes the first as its
/// parent, so a lone order reads as one trace in the dashboard), and each write of it is an <c>insert</c> span.
/// Measurements are per batch where they can be; the per-message ones (end-to-end latency) cost a histogram record
/// and are skipped when nobody listens.
/// </summary>
public static class ConsumerTelemetry
{
    /// <summary>The name of both the activity source and the meter (registered in ServiceDefaults).</summary>
    public const string Name = "Envio.Consumer";

    private static readonly ActivitySource Source = new(Name);
    private static readonly Meter Meter = new(Name);
    private static readonly InstrumentAdvice<double> Seconds = new() { HistogramBucketBoundaries = MessagingTelemetry.DurationBuckets };

    private static readonly Counter<long> Consumed = Meter.CreateCounter<long>(
        "messaging.client.consumed.messages", "{message}", "Messages the broker delivered to the consumer.");

    private static readonly Histogram<double> ProcessDuration = Meter.CreateHistogram(
        "messaging.process.duration", "s", "Processing of a batch: decode, write, moves and acknowledgement.", advice: Seconds);

    private static readonly Histogram<int> BatchSize = Meter.CreateHistogram<int>(
        "envio.consumer.batch.size", "{message}", "Messages per batch.");

    private static readonly Histogram<double> InsertDuration = Meter.CreateHistogram(
        "envio.consumer.insert.duration", "s", "One insert of a batch into the database (each attempt).", advice: Seconds);

    private static readonly Counter<long> Retried = Meter.CreateCounter<long>(
        "envio.consumer.retried", "{message}", "Messages moved to a retry queue after a transient failure.");

    private static readonly Counter<long> DeadLettered = Meter.CreateCounter<long>(
        "envio.consumer.dead_lettered", "{message}", "Messages moved to the error queue; error.type says why.");

    private static readonly Counter<long> Deferred = Meter.CreateCounter<long>(
        "envio.consumer.deferred", "{message}",
        "Messages of a newer schema version than this consumer reads, sent back through a retry queue for a consumer that knows it.");

    // The order's names are kept for every type (envio.type tells them apart): dashboards depend on them.
    private static readonly Counter<long> AlreadyStored = Meter.CreateCounter<long>(
        "envio.consumer.orders.already_stored", "{object}",
        "Data objects of committed batches that created no row: already stored (a redelivery, a client's retry) or twice in the batch.");

    private static readonly Histogram<double> EndToEnd = Meter.CreateHistogram(
        "envio.order.end_to_end.duration", "s", "From the envelope's created-at (the API accepted the data object) to the commit that stored it.",
        advice: Seconds);

    private static readonly ConcurrentDictionary<string, (DataObjectType Type, long Depth)> Depths = new(StringComparer.Ordinal);

    static ConsumerTelemetry() =>
        Meter.CreateObservableGauge("envio.queue.depth", ObserveDepths, "{message}",
            "Messages ready in each queue (work, retry and error queues), as last sampled; unacknowledged ones are not counted.");

    /// <summary>Why a message went to the error queue: <c>error.type</c> of <c>envio.consumer.dead_lettered</c>.</summary>
    public static class DeadLetterReason
    {
        public const string Invalid = "invalid";
        public const string Refused = "refused";
        public const string Exhausted = "retries_exhausted";
    }

    /// <summary>
    /// Where a message just delivered sits in its trace: the client's deliver span when it made one (it is current
    /// while the consumer's handler runs), else the context the publisher wrote into the headers.
    /// </summary>
    public static ActivityContext ContextOf(IReadOnlyBasicProperties properties)
    {
        if (Activity.Current is { } current && current.Source.Name == RabbitMQActivitySource.SubscriberSourceName)
        {
            return current.Context;
        }
        return Source.HasListeners() ? RabbitMQActivitySource.ContextExtractor(properties) : default;
    }

    /// <summary>The span of one batch: parent the first message's context, a link to every message's.</summary>
    public static Activity? StartProcess(string queue, DataObjectType type, IReadOnlyList<Delivery> batch)
    {
        if (!Source.HasListeners())
        {
            return null;
        }
        var parent = default(ActivityContext);
        var links = new List<ActivityLink>(batch.Count);
        foreach (var delivery in batch)
        {
            if (delivery.TraceContext == default)
            {
                continue;
            }
            if (parent == default)
            {
                parent = delivery.TraceContext;
            }
            links.Add(new ActivityLink(delivery.TraceContext));
        }
        var activity = Source.StartActivity("process " + queue, ActivityKind.Consumer, parent, links: links);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(MessagingTelemetry.MessagingSystem, MessagingTelemetry.RabbitMq);
            activity.SetTag(MessagingTelemetry.DestinationName, queue);
            activity.SetTag(MessagingTelemetry.OperationName, "process");
            activity.SetTag(MessagingTelemetry.OperationType, "process");
            activity.SetTag(MessagingTelemetry.BatchMessageCount, batch.Count);
            activity.SetTag(MessagingTelemetry.DataObjectType, type.Name);
        }
        return activity;
    }

    /// <summary>The span of one write of (part of) a batch; a batch split to isolate a refused object nests its halves.</summary>
    public static Activity? StartInsert(DataObjectType type, int count)
    {
        var activity = Source.StartActivity("insert " + type.Table, ActivityKind.Internal);
        activity?.SetTag(MessagingTelemetry.BatchMessageCount, count);
        activity?.SetTag(MessagingTelemetry.DataObjectType, type.Name);
        return activity;
    }

    /// <summary>The <c>envio.type</c> tag of a registered type.</summary>
    public static TagList TypeTag(DataObjectType type) => new() { { MessagingTelemetry.DataObjectType, type.Name } };

    public static void BatchReceived(string queue, DataObjectType type, int count)
    {
        var tags = MessagingTelemetry.Tags(queue, "deliver", type);
        Consumed.Add(count, tags);
        BatchSize.Record(count, tags);
    }

    public static void BatchProcessed(Activity? activity, string queue, DataObjectType type, long started, Exception? failure)
    {
        var tags = MessagingTelemetry.Tags(queue, "process", type);
        if (failure is not null)
        {
            tags.Add(MessagingTelemetry.ErrorType, MessagingTelemetry.ErrorTypeOf(failure));
            activity?.SetStatus(ActivityStatusCode.Error, failure.GetType().Name);
        }
        ProcessDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
    }

    public static void InsertFinished(DataObjectType type, long started, Exception? failure)
    {
        var tags = TypeTag(type);
        if (failure is not null)
        {
            tags.Add(MessagingTelemetry.ErrorType, MessagingTelemetry.ErrorTypeOf(failure));
        }
        InsertDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
    }

    /// <summary>
    /// The batch committed with <paramref name="inserted"/> new rows: the rest were already stored (the idempotent
    /// insert absorbed them), and the end-to-end latency of each of its messages.
    /// </summary>
    public static void Committed(Activity? activity, DataObjectType type, IEnumerable<Delivery> deliveries, int count, int inserted)
    {
        activity?.SetTag("envio.inserted", inserted);
        var tags = TypeTag(type);
        if (count > inserted)
        {
            AlreadyStored.Add(count - inserted, tags);
        }
        if (!EndToEnd.Enabled)
        {
            return;
        }
        var now = DateTimeOffset.UtcNow;
        foreach (var delivery in deliveries)
        {
            if (CreatedAt(delivery.Properties) is { } createdAt)
            {
                EndToEnd.Record(Math.Max(0, (now - createdAt).TotalSeconds), tags);
            }
        }
    }

    public static void MessageRetried(DataObjectType type) => Retried.Add(1, TypeTag(type));

    public static void MessageDeadLettered(DataObjectType type, string reason) =>
        DeadLettered.Add(1, new TagList { { MessagingTelemetry.ErrorType, reason }, { MessagingTelemetry.DataObjectType, type.Name } });

    public static void MessageDeferred(DataObjectType type) => Deferred.Add(1, TypeTag(type));

    /// <summary>Records the last sampled depth of a queue (see <see cref="QueueDepthMonitor"/>).</summary>
    public static void QueueDepthSampled(string queue, DataObjectType type, long depth) => Depths[queue] = (type, depth);

    /// <summary>The <c>envio.consumer.paused</c> gauge: 1 while consuming waits for the database to answer again.</summary>
    public static void ObservePaused(Func<bool> paused) =>
        Meter.CreateObservableGauge("envio.consumer.paused", () => paused() ? 1 : 0, "{state}",
            "1 while the consumer is paused because the database does not answer (see StoreOutage), else 0.");

    /// <summary>The <c>envio.consumer.operator_paused</c> gauge: 1 for each type an operator paused, by <c>envio.type</c>.</summary>
    public static void ObserveOperatorPauses(Func<IEnumerable<(string Type, bool Paused)>> types) =>
        Meter.CreateObservableGauge("envio.consumer.operator_paused",
            () => types().Select(t => new Measurement<int>(t.Paused ? 1 : 0, new KeyValuePair<string, object?>(MessagingTelemetry.DataObjectType, t.Type))),
            "{state}", "1 while an operator's pause holds the type (POST /admin/consumers/pause), else 0.");

    private static IEnumerable<Measurement<long>> ObserveDepths()
    {
        foreach (var (queue, (type, depth)) in Depths)
        {
            yield return new Measurement<long>(depth,
                new KeyValuePair<string, object?>(MessagingTelemetry.MessagingSystem, MessagingTelemetry.RabbitMq),
                new KeyValuePair<string, object?>(MessagingTelemetry.DestinationName, queue),
                new KeyValuePair<string, object?>(MessagingTelemetry.DataObjectType, type.Name));
        }
    }

    /// <summary>The envelope's created-at header, parsed without allocating (it is an ISO 8601 string of ~33 bytes).</summary>
    private static DateTimeOffset? CreatedAt(IReadOnlyBasicProperties properties)
    {
        if (properties.Headers?.TryGetValue(Envelope.CreatedAtHeader, out var value) != true || value is not byte[] { Length: <= 64 } bytes)
        {
            return null;
        }
        Span<char> text = stackalloc char[64];
        var length = Encoding.UTF8.GetChars(bytes, text);
        return DateTimeOffset.TryParse(text[..length], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var createdAt)
            ? createdAt
            : null;
    }
}
