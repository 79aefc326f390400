using System.Diagnostics;
using RabbitMQ.Client;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// A message as the broker delivered it. <see cref="Generation"/> counts the consuming channel's losses (see
/// <see cref="ChannelGeneration"/>): a delivery tag means something only on the channel instance that received it,
/// so a delivery from before a loss is neither written, moved nor acknowledged (the broker redelivers it, and the
/// idempotent insert absorbs what was written meanwhile). <see cref="TraceContext"/> is where the message sits in its
/// trace (the client's deliver span, child of the publish span), so that the batch that writes it can link to it.
/// </summary>
public sealed record Delivery(
    ulong Tag, int Generation, IReadOnlyBasicProperties Properties, ReadOnlyMemory<byte> Body, bool Redelivered,
    ActivityContext TraceContext = default, ChannelGeneration? Channel = null)
{
    /// <summary>The channel that delivered it was lost since: its tag names nothing any more.</summary>
    public bool IsStale => Channel is not null && Channel.Current != Generation;
}

/// <summary>What became of a delivery: the acknowledgement step reads it, and nothing else decides.</summary>
public enum Outcome
{
    /// <summary>Stored (or found stored already): acknowledged.</summary>
    Stored,

    /// <summary>Moved to a retry queue or the error queue, confirmed: acknowledged.</summary>
    Moved,

    /// <summary>The broker did not take its move (a memory or disk alarm): handed back to the work queue, tried again later.</summary>
    ReturnToQueue,

    /// <summary>Its channel was lost: neither acknowledged nor handed back; the broker delivers it again.</summary>
    Stale,

    /// <summary>
    /// Held through a database outage as long as it may be (<see cref="ConsumerOptions.OutageHoldLimit"/>): handed back
    /// to the work queue, and the session ends; consuming starts again when the database answers.
    /// </summary>
    HandedBack,
}

/// <summary>Counts the losses of one consuming channel (alone, or with its connection before the client recovers both).</summary>
public sealed class ChannelGeneration
{
    private int _current;

    public int Current => Volatile.Read(ref _current);

    public void Advance() => Interlocked.Increment(ref _current);
}
