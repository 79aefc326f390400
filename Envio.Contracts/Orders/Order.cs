namespace Envio.Contracts.Orders;

/// <summary>An order, the first data object Envio carries. Its <see cref="OrderId"/> is also the message id.</summary>
public sealed record Order
{
    /// <summary>The client's id for the order; when a client retries a POST with the same id, nothing is written twice.</summary>
    public Guid OrderId { get; init; }

    public required Customer Customer { get; init; }

    /// <summary>ISO 4217 code, e.g. <c>EUR</c>.</summary>
    public required string Currency { get; init; }

    public required IReadOnlyList<OrderItem> Items { get; init; }

    /// <summary>Sum of quantity × unit price over the items.</summary>
    public required decimal Total { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
}

public sealed record Customer
{
    public required string Name { get; init; }

    public required string Email { get; init; }

    /// <summary>The customer's tax or identity document number.</summary>
    public required string Document { get; init; }
}

public sealed record OrderItem
{
    public required string Sku { get; init; }

    public required int Quantity { get; init; }

    public required decimal UnitPrice { get; init; }
}
