using System.Data.Common;
using System.Globalization;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.Security;

namespace Envio.Tests.Support;

/// <summary>
/// Data objects of any type as their tables hold them, compared with what was sent: every column of the object's row
/// and of its child rows, sealed values opened with the key ring (bound to their table, column and id), each rendered
/// as invariant text. What the map says a sent object becomes is computed with the same map the consumer uses, so a
/// difference is a value lost, changed or put in the wrong column.
/// </summary>
public static class StoredObjects
{
    private const int IdsPerQuery = 500;

    /// <summary>What the tables should hold for each object (without <c>received_by</c>), by id.</summary>
    public static Dictionary<Guid, string> Expected<T>(TableMap<T> map, KeyRing keys, IEnumerable<Received<T>> objects) where T : class
    {
        var rows = map.RowsOf([.. objects], keys, "expected");
        var described = rows.ToDictionary(row => row.Id, row => Describe(map.Table, row.Id, null, keys, map.Columns.Select(c => (c.Shape, c.BoxedValueOf(row)))));
        foreach (var child in map.Children)
        {
            foreach (var (id, lines) in child.Accept(new ExpectedChildren<T>(rows, keys)))
            {
                described[id] += lines;
            }
        }
        return described;
    }

    /// <summary>What the tables hold for <paramref name="ids"/> (without <c>received_by</c>), by id.</summary>
    public static async Task<Dictionary<Guid, string>> ReadAsync<T>(DbDataSource database, TableMap<T> map, KeyRing keys, IReadOnlyCollection<Guid> ids)
        where T : class
    {
        var described = new Dictionary<Guid, string>();
        var shapes = map.Columns.Select(c => c.Shape).ToList();
        await ForEachRowAsync(database, map.Table, map.KeyColumn, shapes, ids, values =>
        {
            var id = (Guid)values[shapes.FindIndex(s => s.Name == map.KeyColumn)]!;
            described[id] = Describe(map.Table, id, null, keys, shapes.Zip(values));
        });
        foreach (var child in map.Children)
        {
            var lines = new SortedDictionary<(Guid, int), string>();
            var childShapes = child.Shapes.ToList();
            await ForEachRowAsync(database, child.Table, map.KeyColumn, childShapes, ids, values =>
            {
                var (id, line) = ((Guid)values[0]!, (int)values[1]!);
                lines[(id, line)] = Describe(child.Table, id, line, keys, childShapes.Zip(values));
            });
            foreach (var ((id, _), text) in lines)
            {
                described[id] = described.GetValueOrDefault(id) + text;
            }
        }
        return described;
    }

    public static async Task<long> CountAsync(DbDataSource database, string table, string keyColumn, IReadOnlyCollection<Guid> ids)
    {
        long count = 0;
        foreach (var slice in ids.Chunk(IdsPerQuery))
        {
            await using var command = database.CreateCommand($"SELECT COUNT(*) FROM {table} WHERE {keyColumn} IN ({Literals(slice)})");
            count += Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }
        return count;
    }

    private static string Describe(string table, Guid id, int? line, KeyRing keys, IEnumerable<(ColumnShape Shape, object? Value)> columns) =>
        $"[{table}{(line is null ? "" : $"#{line}")}]" + string.Concat(columns
            .Where(c => c.Shape.Name != StandardColumns.ReceivedBy)
            .Select(c => $" {c.Shape.Name}={Text(table, id, line, keys, c.Shape, c.Value)}"));

    private static string Text(string table, Guid id, int? line, KeyRing keys, ColumnShape shape, object? value) => value switch
    {
        null or DBNull => "null",
        byte[] sealedValue => SensitiveColumns.Open(keys, table, shape.Name, id, sealedValue, line),
        Guid guid => guid.ToString("D"),
        decimal number => number.ToString("0.0000", CultureInfo.InvariantCulture),
        DateTimeOffset instant => Microseconds(instant.UtcDateTime).ToString("O", CultureInfo.InvariantCulture),
        DateTime moment when shape.Type == ColumnType.Date => DateOnly.FromDateTime(moment).ToString("O", CultureInfo.InvariantCulture),
        DateTime moment => Microseconds(DateTime.SpecifyKind(moment, DateTimeKind.Utc)).ToString("O", CultureInfo.InvariantCulture),
        DateOnly date => date.ToString("O", CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        var other => other.ToString() ?? "",
    };

    private static DateTime Microseconds(DateTime moment) => moment.AddTicks(-(moment.Ticks % TimeSpan.TicksPerMicrosecond));

    private static async Task ForEachRowAsync(
        DbDataSource database, string table, string keyColumn, IReadOnlyList<ColumnShape> shapes, IReadOnlyCollection<Guid> ids, Action<object?[]> read)
    {
        foreach (var slice in ids.Chunk(IdsPerQuery))
        {
            await using var command = database.CreateCommand(
                $"SELECT {string.Join(", ", shapes.Select(s => s.Name))} FROM {table} WHERE {keyColumn} IN ({Literals(slice)})");
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                read([.. shapes.Select((shape, i) => reader.IsDBNull(i) ? null : shape.Type switch
                {
                    ColumnType.Bytes => reader.GetFieldValue<byte[]>(i),
                    ColumnType.Timestamp => reader.GetFieldValue<DateTimeOffset>(i),
                    ColumnType.Date => reader.GetValue(i) is DateTime moment ? DateOnly.FromDateTime(moment) : reader.GetFieldValue<DateOnly>(i),
                    ColumnType.Text or ColumnType.FixedText => reader.GetString(i).TrimEnd(),
                    _ => reader.GetValue(i),
                })]);
            }
        }
    }

    // GUIDs format to hex and dashes only: nothing can be injected.
    private static string Literals(IEnumerable<Guid> ids) => string.Join(",", ids.Select(id => $"'{id:D}'"));

    private sealed class ExpectedChildren<T>(List<StoredRow<T>> parents, KeyRing keys) : IChildTableVisitor<T, IEnumerable<(Guid, string)>> where T : class
    {
        public IEnumerable<(Guid, string)> Visit<TElement>(ChildTable<T, TElement> table) where TElement : class =>
            table.RowsOf(parents, keys).GroupBy(row => row.ParentId).Select(rows => (rows.Key, string.Concat(rows.OrderBy(r => r.LineNo)
                .Select(row => Describe(table.Table, row.ParentId, row.LineNo, keys, table.Columns.Select(c => (c.Shape, c.BoxedValueOf(row))))))));
    }
}
