namespace Envio.Messaging;

/// <summary>
/// What a failed message carries besides its original properties: written by the consumer when it moves a message to
/// a retry or the error queue, read by the admin API that lists and replays the error queue.
/// </summary>
public static class FailureHeaders
{
    /// <summary>How many times the message failed so far (absent: never).</summary>
    public const string Attempts = "envio-attempts";
    public const string Reason = "envio-error-reason";
    public const string Exception = "envio-error-exception";
    public const string FailedAt = "envio-failed-at";
    public const string OriginalQueue = "envio-original-queue";
    public const string Consumer = "envio-consumer";

    /// <summary>Set on a message replayed from the error queue: when, for the audit trail.</summary>
    public const string ReplayedAt = "envio-replayed-at";

    /// <summary>The headers a replay removes, so the message starts over with a full retry budget.</summary>
    public static readonly IReadOnlyList<string> OfFailure = [Attempts, Reason, Exception, FailedAt, OriginalQueue, Consumer];
}
