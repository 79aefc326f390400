namespace Envio.ConsumerService.Persistence.Mapping;

/// <summary>
/// A data object as it arrived: the object, its id, and what its message said about it (null: an older message did
/// not say).
/// </summary>
public sealed record Received<T>(T Value, Guid Id, string? CorrelationId, string? ClientId) where T : class;

/// <summary>
/// A data object on its way into its table: the object, what its message said, who writes it (<c>received_by</c>),
/// and the values of its sealed columns, encrypted once per write (see <see cref="TableMap{T}.RowsOf"/>).
/// </summary>
public readonly record struct StoredRow<T>(Received<T> Received, string ReceivedBy, byte[]?[] Sealed) where T : class
{
    public T Value => Received.Value;

    public Guid Id => Received.Id;

    public string? CorrelationId => Received.CorrelationId;

    public string? ClientId => Received.ClientId;
}

/// <summary>One element of a child collection, keyed by its parent's id and its line (1, 2, … in the order sent).</summary>
public readonly record struct ChildRow<TElement>(Guid ParentId, int LineNo, TElement Element, byte[]?[] Sealed) where TElement : class;
