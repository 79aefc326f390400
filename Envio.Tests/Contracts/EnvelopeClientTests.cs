using System.Text;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Contracts.Security;
using Envio.Tests.Security;
using Envio.Tests.Support;
using RabbitMQ.Client;

namespace Envio.Tests.Contracts;

/// <summary>
/// The sending client travels with each message (header <c>envio-client-id</c>) into the row the consumer stores; it is
/// authenticated with the encrypted body, and messages published before it existed still decode, without one.
/// </summary>
public sealed class EnvelopeClientTests
{
    private readonly KeyRing _keys = EncryptionKeysOf.Fresh("k1");

    [Fact]
    public void The_client_id_reaches_the_received_order()
    {
        var (delivery, _) = Message(61_101, "client-a");

        var received = Orders.Decode(_keys, delivery, out var problem, out _);

        Assert.Null(problem);
        Assert.Equal("client-a", received!.ClientId);
    }

    [Fact]
    public void A_message_from_before_client_ids_decodes_without_one()
    {
        var (delivery, properties) = Message(61_102, clientId: null);

        var received = Orders.Decode(_keys, delivery, out var problem, out _);

        Assert.Null(problem);
        Assert.Null(received!.ClientId);
        Assert.False(properties.Headers!.ContainsKey(Envelope.ClientIdHeader));
    }

    [Theory]
    [InlineData("client-b")] // changed on the way
    [InlineData(null)]       // removed on the way
    public void A_client_id_changed_or_removed_on_the_way_does_not_decode(string? forged)
    {
        var (delivery, properties) = Message(61_103, "client-a");
        if (forged is null)
        {
            properties.Headers!.Remove(Envelope.ClientIdHeader);
        }
        else
        {
            properties.Headers![Envelope.ClientIdHeader] = Encoding.UTF8.GetBytes(forged); // as AMQP delivers it
        }

        Assert.Null(Orders.Decode(_keys, delivery with { Properties = properties }, out var problem, out _));
        Assert.Contains("failed authentication", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_client_id_longer_than_the_column_is_refused_with_the_reason()
    {
        var (delivery, _) = Message(61_104, new string('c', Envelope.MaxClientIdLength + 1));

        Assert.Null(Orders.Decode(_keys, delivery, out var problem, out _));
        Assert.Contains(Envelope.ClientIdHeader, problem, StringComparison.Ordinal);
    }

    private (Delivery Delivery, BasicProperties Properties) Message(int seed, string? clientId)
    {
        var order = SampleOrders.Create(seed);
        var envelope = new Envelope(order.OrderId, Orders.Type.WireType, Orders.Type.SchemaVersion, DateTimeOffset.UtcNow, null, clientId);
        var properties = EncryptedBody.Properties(envelope);
        return (new Delivery(1, 0, properties, EncryptedBody.Seal(_keys, envelope, Orders.Type.Serialize(order)), false), properties);
    }
}
