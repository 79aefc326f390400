using Envio.ConsumerService.Persistence.Mapping;

namespace Envio.ConsumerService.Persistence.SqlServer;

/// <summary>
/// The T-SQL of one type, made once from its map, in what both SQL Server and Babelfish accept (no MERGE). The careful
/// path sends the batch as table-valued parameters (<c>@{table}</c> of <c>dbo.{row type}</c>, <c>@{collection}</c> of
/// <c>dbo.{element}_row</c>) in one round trip: each id once (<c>ROW_NUMBER</c>), inserted where it is not stored yet
/// under a key-range lock (<c>UPDLOCK, HOLDLOCK</c>), the child rows of only the objects that were new, then how many
/// were new and the client stored with each id of the batch.
/// </summary>
internal sealed class SqlServerSql
{
    /// <summary>
    /// The declared width of every bounded text column of the table types: wider than any column they fill, since
    /// SqlClient silently cuts a value to its declared width. An over-long value then reaches the INSERT still over-long,
    /// and the table refuses it (2628/8152) instead of storing it shortened.
    /// </summary>
    public const int TextWidth = 4000;

    public SqlServerSql(
        string table, string keyColumn, string rowType, IReadOnlyList<ColumnShape> columns,
        IReadOnlyList<(string Table, string Collection, string RowType, IReadOnlyList<ColumnShape> Columns)> children)
    {
        var arrived = columns.Take(columns.Count - 1).ToList(); // all but received_by
        var key = columns.Single(c => c.Name == keyColumn);
        var childInserts = children.Select(c => $"""

            INSERT INTO dbo.{c.Table} ({Names(c.Columns)})
            SELECT {string.Join(", ", c.Columns.Select(column => "i." + column.Name))}
            FROM @{c.Collection} AS i
            JOIN @inserted AS n ON n.{keyColumn} = i.{keyColumn};

            """);
        InsertNew = $"""
            DECLARE @inserted TABLE ({keyColumn} {TypeOf(key)} NOT NULL PRIMARY KEY);

            INSERT INTO dbo.{table} ({Names(columns)})
            OUTPUT inserted.{keyColumn} INTO @inserted ({keyColumn})
            SELECT {string.Join(", ", arrived.Select(c => "o." + c.Name))}, @{StandardColumns.ReceivedBy}
            FROM (
                SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.{keyColumn} ORDER BY r.{keyColumn}) AS copy_no
                FROM @{table} AS r
            ) AS o
            WHERE o.copy_no = 1
              AND NOT EXISTS (SELECT 1 FROM dbo.{table} AS stored WITH (UPDLOCK, HOLDLOCK) WHERE stored.{keyColumn} = o.{keyColumn});
            {string.Concat(childInserts)}
            SELECT COUNT(*) FROM @inserted;

            SELECT stored.{keyColumn}, stored.{StandardColumns.ClientId}
            FROM dbo.{table} AS stored
            WHERE EXISTS (SELECT 1 FROM @{table} AS r WHERE r.{keyColumn} = stored.{keyColumn});
            """;
        RowTypes = [(rowType, arrived), .. children.Select(c => (c.RowType, c.Columns))];
    }

    /// <summary>The T-SQL of the type <paramref name="map"/> stores.</summary>
    public static SqlServerSql Of<T>(TableMap<T> map) where T : class =>
        new(map.Table, map.KeyColumn, map.Type.SqlServerRowType, [.. map.Columns.Select(c => c.Shape)],
            [.. map.Children.Select(c => (c.Table, c.Collection, c.ElementName + "_row", c.Shapes))]);

    /// <summary>Parameters: <c>@{table}</c> and <c>@{collection}</c> (table-valued), <c>@received_by</c>.</summary>
    public string InsertNew { get; }

    /// <summary>The table types the parameters are declared with: the root's, then each child's.</summary>
    public IReadOnlyList<(string Name, IReadOnlyList<ColumnShape> Columns)> RowTypes { get; }

    /// <summary>How a migration creates a table type (the schema check prints it when one is missing).</summary>
    public static string CreateTypeStatement(string name, IReadOnlyList<ColumnShape> columns) =>
        $"CREATE TYPE dbo.{name} AS TABLE (\n    {string.Join(",\n    ", columns.Select(c => $"{c.Name} {RowTypeOf(c)} {(c.Nullable ? "NULL" : "NOT NULL")}"))}\n);";

    /// <summary>SQL Server's name of a table column's type.</summary>
    public static string TypeOf(ColumnShape column) => column.Type switch
    {
        ColumnType.Uuid => "uniqueidentifier",
        ColumnType.Text => column.MaxLength is { } max and <= TextWidth ? $"nvarchar({max})" : "nvarchar(max)",
        ColumnType.FixedText => $"char({column.MaxLength})",
        ColumnType.Bytes => "varbinary(max)",
        ColumnType.Numeric => $"decimal({ColumnShape.DecimalPrecision},{ColumnShape.DecimalScale})",
        ColumnType.Small => "smallint",
        ColumnType.Whole => "int",
        ColumnType.Big => "bigint",
        ColumnType.Boolean => "bit",
        ColumnType.Timestamp => "datetimeoffset(7)",
        ColumnType.Date => "date",
        _ => throw new ArgumentOutOfRangeException(nameof(column), column.Type, null),
    };

    /// <summary>A table type's column: text as wide as <see cref="TextWidth"/> (or unbounded), see there.</summary>
    public static string RowTypeOf(ColumnShape column) => column.Type switch
    {
        ColumnType.Text or ColumnType.FixedText => column.MaxLength is { } max and <= TextWidth ? $"nvarchar({TextWidth})" : "nvarchar(max)",
        _ => TypeOf(column),
    };

    private static string Names(IEnumerable<ColumnShape> columns) => string.Join(", ", columns.Select(c => c.Name));
}
