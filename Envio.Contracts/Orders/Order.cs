using System.ComponentModel.DataAnnotations;
using Envio.Contracts.DataObjects;

namespace Envio.Contracts.Orders;

/// <summary>
/// An order, the first data object Envio carries. Its <see cref="OrderId"/> is also the message id. Its rules are
/// <see cref="OrderValidator"/> (their messages predate the attributes and are part of its contract); the attributes
/// here give the columns their widths and say which are encrypted.
/// </summary>
[DataObject("order", Rules = typeof(OrderValidator), SqlServerRowType = "order_row_with_client")]
public sealed record Order
{
    /// <summary>The client's id for the order; when a client retries a POST with the same id, nothing is written twice.</summary>
    public Guid OrderId { get; init; }

    public required Customer Customer { get; init; }

    /// <summary>ISO 4217 code, e.g. <c>EUR</c>.</summary>
    [CurrencyCode]
    public required string Currency { get; init; }

    [MaxLength(OrderValidator.MaxItems)]
    public required IReadOnlyList<OrderItem> Items { get; init; }

    /// <summary>Sum of quantity × unit price over the items.</summary>
    public required decimal Total { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>The example the interactive API reference offers, ready to send.</summary>
    public static Order Example => new()
    {
        OrderId = Guid.Parse("0193a6a0-7b1c-7cc2-9d51-3f1e2a4b5c6d"),
        Customer = new Customer { Name = "Ana Souza", Email = "ana.souza@example.com", Document = "123.456.789-09" },
        Currency = "BRL",
        Items =
        [
            new OrderItem { Sku = "BOOK-001", Quantity = 2, UnitPrice = 39.90m },
            new OrderItem { Sku = "PEN-042", Quantity = 3, UnitPrice = 4.50m },
        ],
        Total = 93.30m,
        CreatedAt = new DateTimeOffset(2026, 11, 27, 10, 15, 0, TimeSpan.Zero),
    };
}

public sealed record Customer
{
    [MaxLength(OrderValidator.MaxNameLength)]
    public required string Name { get; init; }

    [Sealed, MaxLength(OrderValidator.MaxEmailLength)]
    public required string Email { get; init; }

    /// <summary>The customer's tax or identity document number.</summary>
    [Sealed, MaxLength(OrderValidator.MaxDocumentLength)]
    public required string Document { get; init; }
}

public sealed record OrderItem
{
    [MaxLength(OrderValidator.MaxSkuLength)]
    public required string Sku { get; init; }

    public required int Quantity { get; init; }

    public required decimal UnitPrice { get; init; }
}
