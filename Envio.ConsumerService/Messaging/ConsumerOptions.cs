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

    /// <summary>
    /// Batches in flight: each on a channel of its own (a multiple-ack covers one channel's deliveries only), so one
    /// batch fills while another commits. Memory is about channels × prefetch × message size.
    /// </summary>
    public int Channels { get; set; } = 2;

    /// <summary>The most messages written in one transaction.</summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>How long a batch waits to fill once its first message arrived.</summary>
    public TimeSpan BatchWindow { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Quick in-process retries of a batch after a transient failure (jittered exponential backoff from
    /// <see cref="QuickRetryDelay"/>); after them the messages wait in the broker's retry queues.
    /// </summary>
    public int QuickRetries { get; set; } = 3;

    public TimeSpan QuickRetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// While the database does not answer, the first pause between probes; it doubles up to
    /// <see cref="OutageProbeMaxDelay"/>, which bounds how long consuming stays paused after the database is back.
    /// </summary>
    public TimeSpan OutageProbeDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan OutageProbeMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Transient batch failures of one type in a row, while the database takes writes, that make an outage of that
    /// type (a revoked privilege, a table held locked): its batches are then held and written again with growing
    /// pauses, never moved. Fewer go through the retry queues, as a deadlock's batch does.
    /// </summary>
    public int OutageAfterFailures { get; set; } = 3;

    /// <summary>
    /// The longest a batch is held waiting for a database that does not answer. Then it goes back to its queue (one
    /// nack, which RabbitMQ 4.3 does not count as a failed delivery; earlier versions count it once) and consuming
    /// waits for the database. Keep it well below the broker's <c>consumer_timeout</c> (30 minutes by default), past
    /// which RabbitMQ cancels the consumer (4.3, <c>consumer_timeout_response = notify_consumer</c>) or closes its
    /// channel (earlier versions), returning every delivery it held.
    /// </summary>
    public TimeSpan OutageHoldLimit { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// How long a move to a retry or the error queue waits for the broker's confirm. Under a memory or disk alarm the
    /// broker blocks publishing: a move not confirmed in time leaves the message in the work queue, tried again later.
    /// </summary>
    public TimeSpan MoveTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The types of data object this consumer takes (their names, <c>order</c>, <c>payment</c>); empty, every registered
    /// type. A type that needs more consumers than the others can have replicas of its own this way.
    /// </summary>
    public List<string> Types { get; set; } = [];

    /// <summary>
    /// A session that received nothing for this long renews its consumer (basic.cancel, then basic.consume): the
    /// broker may drop a consumer without telling it (RabbitMQ 3.10 did, here, for a queue deleted and declared again
    /// at once), and an idle consumer is the only kind that can be dead unnoticed.
    /// </summary>
    public TimeSpan IdleRenewal { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The pause before consuming again after the channel was lost for good.</summary>
    public TimeSpan ResubscribeDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How often a consumer reads the operators' kept state (pause, resume) besides at start and after each recovery
    /// of its control connection: the bound on how long a consumer that missed a command (its connection recovering
    /// at that moment) goes on in the old state.
    /// </summary>
    public TimeSpan ControlStateRefresh { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How this consumer names itself in its confirmations and its control connection's name; unset, <c>{host}/{process id}</c>.</summary>
    public string? Name { get; set; }

    public string EffectiveName => Name is { Length: > 0 } name ? name : $"{Environment.MachineName}/{Environment.ProcessId}";
}
