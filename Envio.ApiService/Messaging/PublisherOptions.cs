namespace Envio.ApiService.Messaging;

/// <summary>How the API publishes, bound from <c>Envio:Publisher</c>.</summary>
public sealed class PublisherOptions
{
    public const string SectionName = "Envio:Publisher";

    /// <summary>How long a request waits for the broker's confirms before it answers 503.</summary>
    public TimeSpan ConfirmTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a pause or resume waits for the consumers' confirmations before it answers with those that came.
    /// Consumers that miss it (their connection recovering) still apply the state within their periodic read.
    /// </summary>
    public TimeSpan ConsumerConfirmationWait { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Confirm-enabled channels publishes are spread over; each pipelines many publishes.</summary>
    public int Channels { get; set; } = 4;

    /// <summary>Unconfirmed publishes allowed per channel before the client makes callers wait.</summary>
    public int MaxOutstandingConfirms { get; set; } = 512;

    /// <summary>The Retry-After a 503 suggests.</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(5);
}
