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

    /// <summary>
    /// Set when the message could not be moved (the broker did not confirm the move in time, as under a memory
    /// alarm): it goes back to the work queue instead of being acknowledged, and is tried again later.
    /// </summary>
    public bool ReturnToQueue { get; private set; }

    public void MarkReturnToQueue() => ReturnToQueue = true;
}

/// <summary>Counts the losses of one consuming channel (alone, or with its connection before the client recovers both).</summary>
public sealed class ChannelGeneration
{
    private int _current;

    public int Current => Volatile.Read(ref _current);

    public void Advance() => Interlocked.Increment(ref _current);
}
