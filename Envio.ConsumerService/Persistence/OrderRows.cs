using Envio.Contracts.Orders;
using Envio.Contracts.Security;

namespace Envio.ConsumerService.Persistence;

/// <summary>An order as it arrived: the contract plus what the message said about it (null: an older message did not say).</summary>
public sealed record ReceivedOrder(Order Order, string? CorrelationId, string? ClientId = null);

/// <summary>A row of <c>orders</c>; the customer's email and document are sealed (<see cref="SensitiveColumns"/>).</summary>
public readonly record struct OrderRow(
    Guid OrderId, string CustomerName, byte[] CustomerEmail, byte[] CustomerDocument, string Currency,
    decimal Total, DateTimeOffset CreatedAt, string? CorrelationId, string? ClientId);

/// <summary>A row of <c>order_items</c>; <see cref="LineNo"/> keeps the items in the order they were sent.</summary>
public readonly record struct OrderItemRow(Guid OrderId, int LineNo, string Sku, int Quantity, decimal UnitPrice);

/// <summary>The mapping from the contract to the tables, shared by every store.</summary>
public static class OrderRows
{
    /// <summary>
    /// Rows for a batch, with each order id once: a batch may hold the same order twice (a redelivery next to a
    /// client's retry), and the stores' insert-if-absent only sees what is already in the table. The sensitive columns
    /// are encrypted here, with the ring's current key, so no store ever sends them in clear.
    /// </summary>
    public static (List<OrderRow> Orders, List<OrderItemRow> Items) From(IReadOnlyList<ReceivedOrder> batch, KeyRing keys)
    {
        var seen = new HashSet<Guid>(batch.Count);
        var orders = new List<OrderRow>(batch.Count);
        var items = new List<OrderItemRow>(batch.Count * 3);
        foreach (var (order, correlationId, clientId) in batch)
        {
            if (!seen.Add(order.OrderId))
            {
                continue;
            }
            orders.Add(new OrderRow(order.OrderId, order.Customer.Name,
                SensitiveColumns.Seal(keys, order.OrderId, SensitiveColumns.CustomerEmail, order.Customer.Email),
                SensitiveColumns.Seal(keys, order.OrderId, SensitiveColumns.CustomerDocument, order.Customer.Document),
                order.Currency, order.Total, order.CreatedAt, correlationId, clientId));
            for (var line = 0; line < order.Items.Count; line++)
            {
                var item = order.Items[line];
                items.Add(new OrderItemRow(order.OrderId, line + 1, item.Sku, item.Quantity, item.UnitPrice));
            }
        }
        return (orders, items);
    }
}
