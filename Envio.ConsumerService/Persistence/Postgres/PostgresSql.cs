using Envio.ConsumerService.Persistence.Mapping;

namespace Envio.ConsumerService.Persistence.Postgres;

/// <summary>
/// The SQL of one type on PostgreSQL, made once from its map. The common batch is copied straight into the tables
/// (binary COPY). The careful path copies into temporary staging tables (<c>staging_{table}</c>,
/// <c>staging_{collection}</c>), inserts where the id is absent (<c>ON CONFLICT DO NOTHING</c>, each id once) with the
/// child rows of only the objects that were new, and returns the client stored with each id of the batch.
/// </summary>
internal sealed class PostgresSql
{
    public PostgresSql(string table, string keyColumn, IReadOnlyList<ColumnShape> columns, IReadOnlyList<(string Table, string Collection, IReadOnlyList<ColumnShape> Columns)> children)
    {
        var arrived = columns.Take(columns.Count - 1).ToList(); // all but received_by
        var staging = "staging_" + table;
        CopyDirect = $"COPY {table} ({Names(columns)}) FROM STDIN (FORMAT BINARY)";
        CopyStaging = $"COPY {staging} ({Names(arrived)}) FROM STDIN (FORMAT BINARY)";
        CreateStaging = string.Join("\n", new[] { $"CREATE TEMP TABLE {staging} ({Definitions(arrived)}) ON COMMIT DROP;" }
            .Concat(children.Select(c => $"CREATE TEMP TABLE staging_{c.Collection} ({Definitions(c.Columns)}) ON COMMIT DROP;")));
        ChildCopyDirect = [.. children.Select(c => $"COPY {c.Table} ({Names(c.Columns)}) FROM STDIN (FORMAT BINARY)")];
        ChildCopyStaging = [.. children.Select(c => $"COPY staging_{c.Collection} ({Names(c.Columns)}) FROM STDIN (FORMAT BINARY)")];
        var childInserts = children.Select(c => $"""
            , {c.Collection} AS (
                INSERT INTO {c.Table} ({Names(c.Columns)})
                SELECT {string.Join(", ", c.Columns.Select(column => "s." + column.Name))}
                FROM staging_{c.Collection} s JOIN inserted USING ({keyColumn})
                RETURNING 1
            )
            """);
        InsertNew = $"""
            WITH inserted AS (
                INSERT INTO {table} ({Names(columns)})
                SELECT DISTINCT ON ({keyColumn}) {Names(arrived)}, $1
                FROM {staging}
                ORDER BY {keyColumn}
                ON CONFLICT ({keyColumn}) DO NOTHING
                RETURNING {keyColumn}
            ){string.Concat(childInserts)}
            SELECT count(*) FROM inserted
            """;
        SelectStoredClients = $"""
            SELECT o.{keyColumn}, o.{StandardColumns.ClientId}
            FROM {table} o JOIN {staging} s USING ({keyColumn})
            """;
    }

    /// <summary>The SQL of the type <paramref name="map"/> stores.</summary>
    public static PostgresSql Of<T>(TableMap<T> map) where T : class =>
        new(map.Table, map.KeyColumn, [.. map.Columns.Select(c => c.Shape)], [.. map.Children.Select(c => (c.Table, c.Collection, c.Shapes))]);

    /// <summary>COPY straight into the table, every column (<c>received_by</c> last).</summary>
    public string CopyDirect { get; }

    /// <summary>The staging tables, dropped at commit.</summary>
    public string CreateStaging { get; }

    /// <summary>COPY into the staging table: the columns as the rows arrived (no <c>received_by</c>).</summary>
    public string CopyStaging { get; }

    public IReadOnlyList<string> ChildCopyDirect { get; }

    public IReadOnlyList<string> ChildCopyStaging { get; }

    /// <summary>From staging into the tables where the id is absent, with the new objects' child rows; returns how many were new. <c>$1</c>: received_by.</summary>
    public string InsertNew { get; }

    /// <summary>After <see cref="InsertNew"/>, in its transaction: the client stored with each id of the batch.</summary>
    public string SelectStoredClients { get; }

    /// <summary>PostgreSQL's name of a column's type.</summary>
    public static string TypeOf(ColumnShape column) => column.Type switch
    {
        ColumnType.Uuid => "uuid",
        ColumnType.Text => column.MaxLength is { } max ? $"varchar({max})" : "text",
        ColumnType.FixedText => $"char({column.MaxLength})",
        ColumnType.Bytes => "bytea",
        ColumnType.Numeric => $"numeric({ColumnShape.DecimalPrecision},{ColumnShape.DecimalScale})",
        ColumnType.Small => "smallint",
        ColumnType.Whole => "integer",
        ColumnType.Big => "bigint",
        ColumnType.Boolean => "boolean",
        ColumnType.Timestamp => "timestamptz",
        ColumnType.Date => "date",
        _ => throw new ArgumentOutOfRangeException(nameof(column), column.Type, null),
    };

    private static string Names(IEnumerable<ColumnShape> columns) => string.Join(", ", columns.Select(c => c.Name));

    private static string Definitions(IEnumerable<ColumnShape> columns) =>
        string.Join(", ", columns.Select(c => $"{c.Name} {TypeOf(c)} {(c.Nullable ? "NULL" : "NOT NULL")}"));
}
