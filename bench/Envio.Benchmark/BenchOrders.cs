using Aspire.Hosting;
using Envio.Messaging;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Extensions.Configuration;
using RabbitMQ.Client;

namespace Envio.Benchmark;

/// <summary>Orders of about 600 bytes on the wire: one order row and three item rows each.</summary>
internal static class BenchOrders
{
    public static DataObjectType<Order> Type { get; } = (DataObjectType<Order>)DataObjectTypes.Registered.ByName("order")!;

    public static Order Create(int i, DateTimeOffset createdAt)
    {
        List<OrderItem> items =
        [
            new() { Sku = $"SKU-{i % 9973:D5}-A", Quantity = 1 + i % 7, UnitPrice = 12.34m },
            new() { Sku = $"SKU-{i % 7919:D5}-B", Quantity = 2, UnitPrice = 99.90m },
            new() { Sku = $"SKU-{i % 4111:D5}-C", Quantity = 1 + i % 3, UnitPrice = 0.50m },
        ];
        return new Order
        {
            OrderId = Guid.CreateVersion7(),
            Customer = new Customer { Name = $"Customer {i} of the benchmark", Email = $"customer{i}@example.com", Document = $"{i:D11}" },
            Currency = "EUR",
            Items = items,
            Total = items.Sum(x => x.Quantity * x.UnitPrice),
            CreatedAt = createdAt,
        };
    }

    /// <summary>The message the API would publish for the order: encrypted, since the consumer refuses plaintext.</summary>
    public static (BasicProperties Properties, byte[] Body) Message(Order order, KeyRing keys)
    {
        var envelope = new Envelope(order.OrderId, Type.WireType, Type.SchemaVersion, order.CreatedAt, null);
        return (EncryptedBody.Properties(envelope), EncryptedBody.Seal(keys, envelope, Type.Serialize(order)));
    }

    /// <summary>The key ring the AppHost hands the services, read from the api's environment as the service reads it.</summary>
    public static async Task<KeyRing> KeysAsync(DistributedApplication app) =>
        KeyRing.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(
            (await ResourceSettings.OfAsync(app, "api", CancellationToken.None)).Where(s => s.Key.StartsWith("Envio:Encryption:", StringComparison.Ordinal))).Build());
}
