using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using RabbitMQ.Client;

namespace Envio.Tests.Support;

/// <summary>Messages put into an error queue the way the consumer dead-letters them.</summary>
public static class ErrorQueueMessages
{
    /// <summary>The API's encrypted message for <paramref name="order"/>, with the failure headers the consumer adds, published to the error exchange.</summary>
    public static async Task DeadLetterAsync(IConnection broker, KeyRing keys, string errorExchange, Order order, string reason, string correlationId)
    {
        var (properties, body) = DeadLettered(keys, order, reason, correlationId);
        await using var channel = await broker.CreateChannelAsync(new CreateChannelOptions(true, true));
        await channel.BasicPublishAsync(errorExchange, "", mandatory: true, properties, body);
    }

    /// <summary>The properties and body of <paramref name="order"/> as the consumer dead-letters it: publish them twice for two identical copies.</summary>
    public static (BasicProperties Properties, byte[] Body) DeadLettered(KeyRing keys, Order order, string reason, string correlationId)
    {
        var envelope = new Envelope(order.OrderId, Orders.Type.WireType, Orders.Type.SchemaVersion, DateTimeOffset.UtcNow, correlationId);
        var properties = EncryptedBody.Properties(envelope);
        properties.Headers![FailureHeaders.Reason] = reason;
        properties.Headers[FailureHeaders.Attempts] = 4;
        return (properties, EncryptedBody.Seal(keys, envelope, Orders.Type.Serialize(order)));
    }
}
