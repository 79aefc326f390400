using System.Diagnostics;
using Envio.Contracts.DataObjects;

namespace Envio.Messaging;

/// <summary>
/// The names both services put on their spans and measurements: the OpenTelemetry messaging semantic conventions
/// (https://opentelemetry.io/docs/specs/semconv/messaging/) where they define one, <c>envio.*</c> otherwise.
/// </summary>
public static class MessagingTelemetry
{
    public const string MessagingSystem = "messaging.system";
    public const string DestinationName = "messaging.destination.name";
    public const string OperationName = "messaging.operation.name";
    public const string OperationType = "messaging.operation.type";
    public const string BatchMessageCount = "messaging.batch.message_count";
    public const string MessageId = "messaging.message.id";
    public const string ConversationId = "messaging.message.conversation_id";
    public const string ErrorType = "error.type";

    /// <summary>The type of data object (<c>order</c>): always a registered type's name, never a header's word.</summary>
    public const string DataObjectType = "envio.type";

    public const string RabbitMq = "rabbitmq";

    /// <summary>Bucket bounds (seconds) for latencies: from a fraction of a millisecond to the retry queues' minutes.</summary>
    public static IReadOnlyList<double> DurationBuckets { get; } =
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

    /// <summary>Tags every Envio measurement of a destination carries.</summary>
    public static TagList Tags(string destination, string operationName, DataObjectType type) => new()
    {
        { MessagingSystem, RabbitMq },
        { DestinationName, destination },
        { OperationName, operationName },
        { DataObjectType, type.Name },
    };

    /// <summary>
    /// A low-cardinality name for a failure, as <c>error.type</c> wants it: the exception's type name (the
    /// convention's fallback), never its message (which may carry data).
    /// </summary>
    public static string ErrorTypeOf(Exception exception) => exception.GetType().FullName ?? exception.GetType().Name;
}
