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

/// <summary>
/// The highest delivery tag a consuming channel handed over and the highest one settled (acked or nacked), each with
/// the channel's generation: what lies between is unacknowledged and goes back with one multiple nack. Tags of one
/// channel only grow, also across the client's recoveries.
/// </summary>
public sealed class Unacknowledged
{
    private readonly Lock _gate = new();
    private (ulong Tag, int Generation) _received;
    private (ulong Tag, int Generation) _settled;

    public void Received(ulong tag, int generation)
    {
        lock (_gate)
        {
            if (generation != _received.Generation || tag > _received.Tag)
            {
                _received = (tag, generation);
            }
        }
    }

    public void Settled(ulong tag, int generation)
    {
        lock (_gate)
        {
            if (generation != _settled.Generation || tag > _settled.Tag)
            {
                _settled = (tag, generation);
            }
        }
    }

    /// <summary>The highest unsettled tag of the current generation, or null when everything received was settled.</summary>
    public ulong? Highest(int generation)
    {
        lock (_gate)
        {
            return _received.Generation == generation && _received.Tag > 0
                && (_settled.Generation != generation || _received.Tag > _settled.Tag)
                ? _received.Tag
                : null;
        }
    }
}
