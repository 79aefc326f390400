using System.Text.Json;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Messaging;
using Envio.Contracts.Orders;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Turns a delivery back into an order, or says why it cannot be one. Everything this rejects is a permanent
/// failure: retrying would give the same answer, so the message goes to the error queue.
/// </summary>
public static class OrderDecoder
{
    public static ReceivedOrder? Decode(Delivery delivery, out string? problem, out Exception? exception)
    {
        exception = null;
        var envelope = Envelope.FromProperties(delivery.Properties, out problem);
        if (envelope is null)
        {
            return null;
        }
        if (envelope.Type != WireFormat.OrderType)
        {
            problem = $"Unknown message type '{envelope.Type}'.";
            return null;
        }
        if (envelope.SchemaVersion != WireFormat.OrderSchemaVersion)
        {
            problem = $"Unknown schema version {envelope.SchemaVersion} of {envelope.Type} (this consumer reads {WireFormat.OrderSchemaVersion}).";
            return null;
        }

        Order? order;
        try
        {
            order = WireFormat.DeserializeOrder(delivery.Body.Span);
        }
        catch (JsonException e)
        {
            exception = e;
            problem = $"The body is not a valid order: {e.Message}";
            return null;
        }

        var errors = OrderValidator.Validate(order);
        if (errors.Count > 0)
        {
            problem = "The order is not valid: " + string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}"));
            return null;
        }
        if (order!.OrderId != envelope.MessageId)
        {
            problem = $"The order id {order.OrderId} differs from the message id {envelope.MessageId}.";
            return null;
        }
        return new ReceivedOrder(order, envelope.CorrelationId);
    }
}
