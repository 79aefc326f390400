using Envio.Contracts.Orders;

namespace Envio.Tests.Support;

/// <summary>Valid orders with varied content, and the means to compare them with what a store holds.</summary>
public static class SampleOrders
{
    private static readonly string[] Currencies = ["EUR", "USD", "BRL", "JPY", "BHD", "GBP"];

    public static Order Create(int seed, int items = 3)
    {
        var random = new Random(seed);
        var lines = Enumerable.Range(1, items).Select(line => new OrderItem
        {
            Sku = $"SKU-{seed}-{line}",
            Quantity = random.Next(1, 50),
            UnitPrice = Math.Round((decimal)random.NextDouble() * 500m, 2),
        }).ToList();
        return new Order
        {
            OrderId = Guid.CreateVersion7(),
            Customer = new Customer
            {
                Name = $"Cliente Número {seed} — Ñandú",
                Email = $"customer{seed}@example.com",
                Document = $"{random.Next(100, 999)}.{random.Next(100, 999)}.{random.Next(100, 999)}-{random.Next(10, 99)}",
            },
            Currency = Currencies[seed % Currencies.Length],
            Items = lines,
            Total = lines.Sum(l => l.Quantity * l.UnitPrice),
            // Whole milliseconds with an offset: stores keep the instant to the microsecond.
            CreatedAt = new DateTimeOffset(2026, 11, 27, 10, 0, 0, TimeSpan.FromHours(-3)).AddMilliseconds(seed * 1_001),
        };
    }

    /// <summary>A value-equal rendering of an order (records compare lists by reference).</summary>
    public static string Describe(Order order) =>
        $"{order.OrderId}|{order.Customer.Name}|{order.Customer.Email}|{order.Customer.Document}|{order.Currency}|" +
        $"{order.Total:0.0000}|{order.CreatedAt.UtcDateTime:O}|" +
        string.Join(";", order.Items.Select(i => $"{i.Sku}x{i.Quantity}@{i.UnitPrice:0.0000}"));
}
