using Envio.ConsumerService.Persistence.Mapping;

namespace Envio.ConsumerService.Persistence;

/// <summary>A column as a database's catalog describes it; <see cref="MaxLength"/> is -1 for an unbounded text or binary.</summary>
public sealed record CatalogColumn(string Name, string DataType, int? MaxLength, int? Precision, int? Scale, bool Nullable);

/// <summary>
/// Compares a table as a type's map expects it with the catalog's columns: every column there, of a type that holds
/// its values (each engine says which, <paramref name="typeProblem"/>), nullable where the property may be null, and
/// as wide as the property allows. Each problem names the table and the column.
/// </summary>
internal static class SchemaCheck
{
    public static IEnumerable<string> Problems(
        string table, IReadOnlyList<ColumnShape> expected, IReadOnlyList<CatalogColumn> actual, Func<ColumnShape, CatalogColumn, string?> typeProblem)
    {
        if (actual.Count == 0)
        {
            yield return $"{table}: the table does not exist.";
            yield break;
        }
        var byName = actual.ToDictionary(c => c.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var column in expected)
        {
            if (!byName.TryGetValue(column.Name, out var found))
            {
                yield return $"{table}.{column.Name}: the column does not exist ({Describe(column)}).";
                continue;
            }
            if (typeProblem(column, found) is { } problem)
            {
                yield return $"{table}.{column.Name}: {problem} ({Describe(column)}).";
            }
            else if (column.Nullable && !found.Nullable)
            {
                yield return $"{table}.{column.Name}: NOT NULL, but its property may be null.";
            }
            else if (column.Type is ColumnType.Text or ColumnType.FixedText && WidthProblem(column, found) is { } width)
            {
                yield return $"{table}.{column.Name}: {width}";
            }
        }
    }

    private static string? WidthProblem(ColumnShape expected, CatalogColumn found) => (expected.MaxLength, found.MaxLength) switch
    {
        (null, { } width and not -1) => $"holds at most {width} characters, but its property has no maximum.",
        ({ } max, { } width and not -1) when width < max => $"holds at most {width} characters, but its property allows {max}.",
        _ => null,
    };

    private static string Describe(ColumnShape column) =>
        $"expected {column.Type}{(column.MaxLength is { } max ? $"({max})" : "")}{(column.Nullable ? " NULL" : " NOT NULL")}";
}
