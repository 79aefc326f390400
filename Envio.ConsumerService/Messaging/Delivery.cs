using System.Diagnostics;
using RabbitMQ.Client;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// A message as the broker delivered it. <see cref="Generation"/> counts the connection's recoveries: a delivery
/// tag means something only on the channel instance that received it, so a delivery from before a recovery is
/// never acknowledged (the broker redelivers it, and the idempotent insert absorbs it). <see cref="TraceContext"/>
/// is where the message sits in its trace (the client's deliver span, child of the publish span), so that the
/// batch that writes it can link to it.
/// </summary>
public sealed record Delivery(
    ulong Tag, int Generation, IReadOnlyBasicProperties Properties, ReadOnlyMemory<byte> Body, bool Redelivered,
    ActivityContext TraceContext = default);
