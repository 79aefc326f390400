using System.Text.Json;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Messaging;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Turns a delivery back into an order, or says why it cannot be one. Everything this rejects is a permanent
/// failure: retrying would give the same answer, so the message goes to the error queue. A body must be encrypted
/// (see <see cref="EncryptedBody"/>): plaintext, a key not in the ring, or a body that fails authentication is refused.
/// </summary>
public sealed class OrderDecoder(KeyRing keys)
{
    public ReceivedOrder? Decode(Delivery delivery, out string? problem, out Exception? exception)
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

        var scheme = EncryptedBody.SchemeOf(delivery.Properties);
        if (scheme != EncryptedBody.Scheme)
        {
            problem = scheme is null
                ? $"The body is not encrypted (no {EncryptedBody.SchemeHeader} header): plaintext bodies are refused."
                : $"Unknown encryption scheme '{scheme}' (this consumer reads {EncryptedBody.Scheme}).";
            return null;
        }
        byte[] json;
        try
        {
            json = EncryptedBody.Open(keys, envelope, delivery.Body.Span);
        }
        catch (UndecryptableException e)
        {
            exception = e;
            problem = $"The body cannot be decrypted: {e.Message}";
            return null;
        }

        Order? order;
        try
        {
            order = WireFormat.DeserializeOrder(json);
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
        return new ReceivedOrder(order, envelope.CorrelationId, envelope.ClientId);
    }
}
