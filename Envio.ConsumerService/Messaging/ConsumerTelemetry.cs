using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Messaging;
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

    private static readonly Counter<long> AlreadyStored = Meter.CreateCounter<long>(
        "envio.consumer.orders.already_stored", "{order}",
        "Orders of committed batches that created no row: already stored (a redelivery, a client's retry) or twice in the batch.");

    private static readonly Histogram<double> EndToEnd = Meter.CreateHistogram(
        "envio.order.end_to_end.duration", "s", "From the envelope's created-at (the API accepted the order) to the commit that stored it.",
        advice: Seconds);

    private static readonly ConcurrentDictionary<string, long> Depths = new(StringComparer.Ordinal);

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
    public static Activity? StartProcess(string queue, IReadOnlyList<Delivery> batch)
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
        }
        return activity;
    }

    /// <summary>The span of one write of (part of) a batch; a batch split to isolate a refused order nests its halves.</summary>
    public static Activity? StartInsert(int count)
    {
        var activity = Source.StartActivity("insert orders", ActivityKind.Internal);
        activity?.SetTag(MessagingTelemetry.BatchMessageCount, count);
        return activity;
    }

    public static void BatchReceived(string queue, int count)
    {
        var tags = MessagingTelemetry.Tags(queue, "deliver");
        Consumed.Add(count, tags);
        BatchSize.Record(count, tags);
    }

    public static void BatchProcessed(Activity? activity, string queue, long started, Exception? failure)
    {
        var tags = MessagingTelemetry.Tags(queue, "process");
        if (failure is not null)
        {
            tags.Add(MessagingTelemetry.ErrorType, MessagingTelemetry.ErrorTypeOf(failure));
            activity?.SetStatus(ActivityStatusCode.Error, failure.GetType().Name);
        }
        ProcessDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
    }

    public static void InsertFinished(long started, Exception? failure)
    {
        var tags = new TagList();
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
    public static void Committed(Activity? activity, IReadOnlyList<(Delivery Delivery, ReceivedOrder Order)> batch, int inserted)
    {
        activity?.SetTag("envio.orders.inserted", inserted);
        if (batch.Count > inserted)
        {
            AlreadyStored.Add(batch.Count - inserted);
        }
        if (!EndToEnd.Enabled)
        {
            return;
        }
        var now = DateTimeOffset.UtcNow;
        foreach (var (delivery, _) in batch)
        {
            if (CreatedAt(delivery.Properties) is { } createdAt)
            {
                EndToEnd.Record(Math.Max(0, (now - createdAt).TotalSeconds));
            }
        }
    }

    public static void MessageRetried() => Retried.Add(1);

    public static void MessageDeadLettered(string reason) => DeadLettered.Add(1, new TagList { { MessagingTelemetry.ErrorType, reason } });

    /// <summary>Records the last sampled depth of a queue (see <see cref="QueueDepthMonitor"/>).</summary>
    public static void QueueDepthSampled(string queue, long depth) => Depths[queue] = depth;

    /// <summary>The <c>envio.consumer.paused</c> gauge: 1 while consuming waits for the database to answer again.</summary>
    public static void ObservePaused(Func<bool> paused) =>
        Meter.CreateObservableGauge("envio.consumer.paused", () => paused() ? 1 : 0, "{state}",
            "1 while the consumer is paused because the database does not answer (see StoreOutage), else 0.");

    private static IEnumerable<Measurement<long>> ObserveDepths()
    {
        foreach (var (queue, depth) in Depths)
        {
            yield return new Measurement<long>(depth,
                new KeyValuePair<string, object?>(MessagingTelemetry.MessagingSystem, MessagingTelemetry.RabbitMq),
                new KeyValuePair<string, object?>(MessagingTelemetry.DestinationName, queue));
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
