using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Contracts.Orders;
using Envio.Messaging;

namespace Envio.Tests.Support;

/// <summary>The order type as the registry holds it, and what tests make of orders: messages, received objects, names.</summary>
public static class Orders
{
    public static DataObjectType<Order> Type { get; } = (DataObjectType<Order>)DataObjectTypes.Registered.ByName("order")!;

    /// <summary>An order as a message brought it to the consumer.</summary>
    public static Received<Order> Received(Order order, string? correlationId = null, string? clientId = null) =>
        new(order, order.OrderId, correlationId, clientId);

    /// <summary>The envelope the API would give an order published now.</summary>
    public static Envelope Envelope(Order order, string? correlationId = null, string? clientId = null) =>
        new(order.OrderId, Type.WireType, Type.SchemaVersion, DateTimeOffset.UtcNow, correlationId, clientId);

    /// <summary>What the consumer's decoder makes of a delivery of the order queue: the order, or null and why.</summary>
    public static Received<Order>? Decode(Envio.Contracts.Security.KeyRing keys, Envio.ConsumerService.Messaging.Delivery delivery, out string? problem, out Exception? exception)
    {
        var decoded = new Envio.ConsumerService.Messaging.MessageDecoder(keys).Decode(Type, delivery);
        (problem, exception) = (decoded.Problem, decoded.Exception);
        return decoded.Value;
    }

    /// <summary>The order's exchanges and queues under <paramref name="topology"/>.</summary>
    public static QueueNames Names(TopologyOptions topology) => topology.NamesOf(Type);

    /// <summary>Writes orders as the consumer's batch handler does, into <paramref name="store"/>, moving failures under <paramref name="topology"/>.</summary>
    public static Task<Envio.ConsumerService.Messaging.Outcome[]> WriteOrdersAsync(
        this Envio.ConsumerService.Messaging.BatchWriter writer, TestStore store, TopologyOptions topology,
        IEnumerable<(Envio.ConsumerService.Messaging.Delivery Delivery, Received<Order> Received)> batch, CancellationToken cancellationToken) =>
        writer.WriteAsync(store.WriterOf(Type), Names(topology), [.. batch], cancellationToken);

    /// <summary>Publishes orders as the API does (serialized, sealed, confirmed) to their exchange under <paramref name="topology"/>.</summary>
    public static Task PublishOrdersAsync(
        this Envio.ApiService.Messaging.MessagePublisher publisher, TopologyOptions topology, IEnumerable<(Envelope Envelope, Order Order)> messages,
        CancellationToken cancellationToken) =>
        publisher.PublishAsync(Names(topology), [.. messages.Select(m => (m.Envelope, Type.Serialize(m.Order)))], cancellationToken);
}
