namespace Envio.ConsumerService.Messaging;

/// <summary>How the consumer takes messages, bound from <c>Envio:Consumer</c>.</summary>
public sealed class ConsumerOptions
{
    public const string SectionName = "Envio:Consumer";

    /// <summary>
    /// Unacknowledged messages the broker may hand this consumer. It bounds memory (about prefetch × message size)
    /// and should exceed <see cref="BatchSize"/>, so the next batch fills while one commits.
    /// </summary>
    public ushort Prefetch { get; set; } = 1000;

    /// <summary>The most messages written in one transaction.</summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>How long a batch waits to fill once its first message arrived.</summary>
    public TimeSpan BatchWindow { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>The longest pause between two attempts to write a batch while the database is failing.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);
}
