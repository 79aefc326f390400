namespace Envio.ConsumerService.Persistence.Mapping;

/// <summary>What a column holds, whichever engine stores it (Small, Whole, Big: 16, 32 and 64-bit integers).</summary>
public enum ColumnType { Uuid, Text, FixedText, Bytes, Numeric, Small, Whole, Big, Boolean, Timestamp, Date }

/// <summary>A column as the tables have it: name, type, nullability and (text) the longest value in characters.</summary>
public sealed record ColumnShape(string Name, ColumnType Type, bool Nullable, int? MaxLength = null)
{
    /// <summary><c>decimal(19,4)</c>: what every decimal property is stored as.</summary>
    public const byte DecimalPrecision = 19;
    public const byte DecimalScale = 4;
}

/// <summary>Turns a column into code typed by its values (a COPY writer, a bulk-copy reader, a table-valued parameter's setter).</summary>
public interface IColumnVisitor<TRow, out TResult>
{
    TResult Visit<TValue>(Column<TRow, TValue> column);
}

/// <summary>A column of rows of type <typeparamref name="TRow"/>.</summary>
public abstract class Column<TRow>(ColumnShape shape)
{
    public ColumnShape Shape { get; } = shape;

    public string Name => Shape.Name;

    public abstract TResult Accept<TResult>(IColumnVisitor<TRow, TResult> visitor);

    /// <summary>The value boxed, null as null: for the bulk-copy reader, which asks for objects anyway.</summary>
    public abstract object? BoxedValueOf(TRow row);
}

/// <summary>
/// A column whose values a typed getter reads from a row (<c>Func&lt;TRow, TValue&gt;</c>, made once at start-up): a
/// nullable value type is <c>TValue?</c>, an enum is already its name (text).
/// </summary>
public sealed class Column<TRow, TValue>(ColumnShape shape, Func<TRow, TValue> get) : Column<TRow>(shape)
{
    public Func<TRow, TValue> Get { get; } = get;

    public override TResult Accept<TResult>(IColumnVisitor<TRow, TResult> visitor) => visitor.Visit(this);

    public override object? BoxedValueOf(TRow row) => Get(row);
}
