using System.Diagnostics;
using System.Diagnostics.Metrics;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using RabbitMQ.Client.Exceptions;

namespace Envio.ApiService.Messaging;

/// <summary>
/// The publisher's span and instruments. The RabbitMQ client makes the per-message <c>publish</c> spans itself (source
/// <c>RabbitMQ.Client.Publisher</c>) and writes their W3C <c>traceparent</c> into the message headers; this adds
/// what it cannot know: one span over a request's publishes and confirms, and the confirm outcome of every message.
/// Static, like the client's own sources: instruments are cheap to call and free when nobody listens.
/// </summary>
public static class PublisherTelemetry
{
    /// <summary>The name of both the activity source and the meter (registered in ServiceDefaults).</summary>
    public const string Name = "Envio.Publisher";

    private const string PublishOperation = "publish";

    private static readonly ActivitySource Source = new(Name);
    private static readonly Meter Meter = new(Name);

    private static readonly Counter<long> Sent = Meter.CreateCounter<long>(
        "messaging.client.sent.messages", "{message}",
        "Messages published to the broker; error.type is set on those the broker did not confirm.");

    private static readonly Histogram<double> Duration = Meter.CreateHistogram(
        "messaging.client.operation.duration", "s", "From the publish of a message to the broker's confirm or the failure.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = MessagingTelemetry.DurationBuckets });

    private static readonly Counter<long> Confirmed = Meter.CreateCounter<long>(
        "envio.publisher.confirmed", "{message}", "Messages the broker confirmed: the API may answer 202 for them.");

    private static readonly Counter<long> Nacked = Meter.CreateCounter<long>(
        "envio.publisher.nacked", "{message}", "Messages the broker refused (a nack) or could not route (a return).");

    /// <summary>A span over one call of the publisher: every publish of the request, and the wait for the confirms.</summary>
    public static Activity? StartSend(string exchange, DataObjectType type, int count)
    {
        if (!Source.HasListeners())
        {
            return null;
        }
        var activity = Source.StartActivity("send " + exchange, ActivityKind.Client);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(MessagingTelemetry.MessagingSystem, MessagingTelemetry.RabbitMq);
            activity.SetTag(MessagingTelemetry.DestinationName, exchange);
            activity.SetTag(MessagingTelemetry.OperationName, "send");
            activity.SetTag(MessagingTelemetry.OperationType, "send");
            activity.SetTag(MessagingTelemetry.BatchMessageCount, count);
            activity.SetTag(MessagingTelemetry.DataObjectType, type.Name);
        }
        return activity;
    }

    public static void SendFailed(Activity? activity, string reason) => activity?.SetStatus(ActivityStatusCode.Error, reason);

    /// <summary>The broker confirmed a message published at <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public static void MessageConfirmed(string exchange, DataObjectType type, long started)
    {
        var tags = MessagingTelemetry.Tags(exchange, PublishOperation, type);
        Sent.Add(1, tags);
        Confirmed.Add(1, tags);
        Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
    }

    /// <summary>A message was not confirmed: refused, returned, timed out, or the connection went away.</summary>
    public static void MessageFailed(string exchange, DataObjectType type, long started, Exception exception)
    {
        var tags = MessagingTelemetry.Tags(exchange, PublishOperation, type);
        tags.Add(MessagingTelemetry.ErrorType, exception is PublishException publish
            ? publish.IsReturn ? "returned" : "nacked"
            : MessagingTelemetry.ErrorTypeOf(exception));
        Sent.Add(1, tags);
        Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
        if (exception is PublishException)
        {
            Nacked.Add(1, tags);
        }
    }
}
