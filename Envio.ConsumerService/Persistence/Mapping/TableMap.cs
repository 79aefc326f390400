using Envio.Contracts.DataObjects;
using Envio.Contracts.Security;

namespace Envio.ConsumerService.Persistence.Mapping;

/// <summary>The columns every table has besides its type's values (and <c>received_at</c>, which the database fills in).</summary>
public static class StandardColumns
{
    public const string CorrelationId = "correlation_id";
    public const string ClientId = "client_id";
    public const string ReceivedBy = "received_by";
    public const string ReceivedAt = "received_at";
    public const string LineNo = "line_no";
}

/// <summary>
/// How one type of data object is stored, by convention, built once at start-up from its record: a table named after
/// its plural (<c>orders</c>) whose columns are its values in declaration order, objects flattened with their name as
/// prefix (<c>customer_name</c>), then what its message said (<c>correlation_id</c>, <c>client_id</c>) and who wrote it
/// (<c>received_by</c>); each child collection a table of its own (<c>order_items</c>) keyed by the parent's id and a line
/// number. Sealed values are encrypted once per write, bound to their table, column and id (<see cref="SensitiveColumns"/>).
/// The stores build their SQL and writers from this once; a row's values are then typed delegate calls.
/// </summary>
public sealed class TableMap<T> where T : class
{
    private readonly (string Column, Func<T, string?> Get)[] _sealed;

    public TableMap(DataObjectType<T> type)
    {
        Type = type;
        Table = type.Table;
        KeyColumn = type.Id.ColumnName;
        var columns = new ColumnsBuilder<StoredRow<T>, T>(row => row.Value, row => row.Sealed).AddMembers(type.Members);
        columns.Add(new Column<StoredRow<T>, string?>(new ColumnShape(StandardColumns.CorrelationId, ColumnType.Text, Nullable: true, 128), row => row.CorrelationId));
        columns.Add(new Column<StoredRow<T>, string?>(new ColumnShape(StandardColumns.ClientId, ColumnType.Text, Nullable: true, 256), row => row.ClientId));
        columns.Add(new Column<StoredRow<T>, string>(new ColumnShape(StandardColumns.ReceivedBy, ColumnType.Text, Nullable: false, 128), row => row.ReceivedBy));
        Columns = columns.Columns;
        _sealed = [.. columns.Sealed];
        var parent = type.Name.Replace('-', '_');
        Children = [.. columns.Collections.Select(member => Accessors.Invoke<ChildTable<T>>(
            typeof(TableMap<T>), nameof(ChildTableOf), [member.Property.PropertyType, member.ValueType], null, this, member, parent))];
    }

    public DataObjectType<T> Type { get; }

    /// <summary><c>orders</c>.</summary>
    public string Table { get; }

    /// <summary>The id's column, the primary key: <c>order_id</c>.</summary>
    public string KeyColumn { get; }

    /// <summary>Every column a write fills, in order; <c>received_by</c> last.</summary>
    public IReadOnlyList<Column<StoredRow<T>>> Columns { get; }

    /// <summary>The columns of a row as it arrived: all but <c>received_by</c> (what a staging table or table type holds).</summary>
    public IEnumerable<Column<StoredRow<T>>> ArrivedColumns => Columns.Take(Columns.Count - 1);

    public IReadOnlyList<ChildTable<T>> Children { get; }

    /// <summary>
    /// The rows of a batch, each id once: a batch may hold the same object twice (a redelivery next to a client's
    /// retry), and a store's insert-if-absent only sees what is already in the table. The sealed values are
    /// encrypted here, with the ring's current key, so no store ever sends them in clear.
    /// </summary>
    public List<StoredRow<T>> RowsOf(IReadOnlyList<Received<T>> batch, KeyRing keys, string receivedBy)
    {
        var seen = new HashSet<Guid>(batch.Count);
        var rows = new List<StoredRow<T>>(batch.Count);
        foreach (var received in batch)
        {
            if (seen.Add(received.Id))
            {
                rows.Add(new StoredRow<T>(received, receivedBy, Seal(keys, Table, received.Id, received.Value, _sealed, line: null)));
            }
        }
        return rows;
    }

    internal static byte[]?[] Seal<TSource>(KeyRing keys, string table, Guid id, TSource source, (string Column, Func<TSource, string?> Get)[] columns, int? line)
    {
        if (columns.Length == 0)
        {
            return [];
        }
        var values = new byte[]?[columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            if (columns[i].Get(source) is { } clear)
            {
                values[i] = SensitiveColumns.Seal(keys, table, columns[i].Column, id, clear, line);
            }
        }
        return values;
    }

    private static ChildTable<T> ChildTableOf<TCollection, TElement>(TableMap<T> parent, DataObjectMember member, string parentName)
        where TCollection : class, IEnumerable<TElement> where TElement : class =>
        new ChildTable<T, TElement>(parent, member, Accessors.Getter<T, TCollection?>(member.Property), parentName);
}

/// <summary>A child collection's table (<c>order_items</c>): the parent's key, <c>line_no</c>, then the element's values.</summary>
public abstract class ChildTable<T> where T : class
{
    /// <summary><c>order_items</c>: the parent's name and the collection's.</summary>
    public required string Table { get; init; }

    /// <summary>The collection's own name (<c>items</c>): its staging table and parameter are named after it.</summary>
    public required string Collection { get; init; }

    /// <summary>The element's name (<c>order_item</c>): the SQL Server table type of its rows is <c>{it}_row</c>.</summary>
    public required string ElementName { get; init; }

    public abstract IReadOnlyList<ColumnShape> Shapes { get; }

    public abstract TResult Accept<TResult>(IChildTableVisitor<T, TResult> visitor);
}

public interface IChildTableVisitor<T, out TResult> where T : class
{
    TResult Visit<TElement>(ChildTable<T, TElement> table) where TElement : class;
}

public sealed class ChildTable<T, TElement> : ChildTable<T> where T : class where TElement : class
{
    private readonly Func<T, IEnumerable<TElement>?> _elements;
    private readonly (string Column, Func<TElement, string?> Get)[] _sealed;

    [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
    public ChildTable(TableMap<T> parent, DataObjectMember collection, Func<T, IEnumerable<TElement>?> elements, string parentName)
    {
        _elements = elements;
        Table = $"{parentName}_{collection.ColumnName}";
        Collection = collection.ColumnName;
        ElementName = Naming.SnakeCase(typeof(TElement).Name);
        var columns = new ColumnsBuilder<ChildRow<TElement>, TElement>(row => row.Element, row => row.Sealed);
        columns.Add(new Column<ChildRow<TElement>, Guid>(new ColumnShape(parent.KeyColumn, ColumnType.Uuid, Nullable: false), row => row.ParentId));
        columns.Add(new Column<ChildRow<TElement>, int>(new ColumnShape(StandardColumns.LineNo, ColumnType.Whole, Nullable: false), row => row.LineNo));
        columns.AddMembers(collection.Members);
        Columns = columns.Columns;
        _sealed = [.. columns.Sealed];
    }

    public IReadOnlyList<Column<ChildRow<TElement>>> Columns { get; }

    public override IReadOnlyList<ColumnShape> Shapes => [.. Columns.Select(c => c.Shape)];

    public override TResult Accept<TResult>(IChildTableVisitor<T, TResult> visitor) => visitor.Visit(this);

    /// <summary>The rows of the parents' elements, lines numbered from 1 in the order they were sent.</summary>
    public List<ChildRow<TElement>> RowsOf(IReadOnlyList<StoredRow<T>> parents, KeyRing keys)
    {
        var rows = new List<ChildRow<TElement>>(parents.Count * 3);
        foreach (var parent in parents)
        {
            if (_elements(parent.Value) is not { } elements)
            {
                continue;
            }
            var line = 0;
            foreach (var element in elements)
            {
                line++;
                rows.Add(new ChildRow<TElement>(parent.Id, line, element, TableMap<T>.Seal(keys, Table, parent.Id, element, _sealed, line)));
            }
        }
        return rows;
    }
}
