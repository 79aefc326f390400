using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Envio.Tests.Compatibility;

/// <summary>What the live JSON may hold at one place that the snapshot does not.</summary>
public enum Additions
{
    /// <summary>Nothing: equal, member for member.</summary>
    None,

    /// <summary>
    /// Subset: an object may have members the snapshot lacks (a new path, schema, queue or table); an array may hold
    /// elements the snapshot lacks, in any order. What the snapshot holds must be there and equal.
    /// </summary>
    Members,

    /// <summary>An array may go on after the snapshot's elements (a journal: new migrations follow the old ones).</summary>
    Appended,
}

/// <summary>
/// Compares a snapshot with the live JSON and names every difference by its JSON path, with both values. Where the
/// live JSON may add to the snapshot (and nowhere else) is said per place: <paramref name="additions"/> gets the
/// place's path as segments (member names, and <c>[i]</c> for array elements); <c>*</c> in a rule matches any segment.
/// </summary>
public static partial class JsonComparison
{
    private const int MaxValueLength = 300;

    /// <summary>No additions anywhere: the live JSON equals the snapshot.</summary>
    public static Additions Exact(IReadOnlyList<string> path) => Additions.None;

    /// <summary>A rule allowing <paramref name="kind"/> at the places listed (paths like <c>paths/*</c>, root <c>""</c>).</summary>
    public static Func<IReadOnlyList<string>, Additions> AllowAt(Additions kind, params string[] places)
    {
        var patterns = places.Select(p => p.Length == 0 ? [] : p.Split('/')).ToList();
        return path => patterns.Any(pattern => Matches(pattern, path)) ? kind : Additions.None;
    }

    /// <summary>Combines rules: the first that allows something at a place decides it.</summary>
    public static Func<IReadOnlyList<string>, Additions> Either(params Func<IReadOnlyList<string>, Additions>[] rules) =>
        path => rules.Select(rule => rule(path)).FirstOrDefault(kind => kind != Additions.None);

    /// <summary>The differences, at most <paramref name="max"/>, each as "path: expected …, actual …".</summary>
    public static List<string> Differences(JsonNode? expected, JsonNode? actual, Func<IReadOnlyList<string>, Additions>? additions = null, int max = 20)
    {
        var differences = new List<string>();
        Compare(expected, actual, [], additions ?? Exact, differences, max);
        return differences;
    }

    private static void Compare(
        JsonNode? expected, JsonNode? actual, List<string> path, Func<IReadOnlyList<string>, Additions> additions, List<string> differences, int max)
    {
        if (differences.Count >= max)
        {
            return;
        }
        switch (expected, actual)
        {
            case (JsonObject e, JsonObject a):
                foreach (var (name, value) in e)
                {
                    path.Add(name);
                    if (a.TryGetPropertyValue(name, out var live))
                    {
                        Compare(value, live, path, additions, differences, max);
                    }
                    else
                    {
                        Add(differences, max, path, Show(value), "(missing)");
                    }
                    path.RemoveAt(path.Count - 1);
                }
                if (additions(path) != Additions.Members)
                {
                    foreach (var (name, value) in a.Where(m => !e.ContainsKey(m.Key)))
                    {
                        path.Add(name);
                        Add(differences, max, path, "(missing)", Show(value));
                        path.RemoveAt(path.Count - 1);
                    }
                }
                break;
            case (JsonArray e, JsonArray a):
                CompareArrays(e, a, path, additions, differences, max);
                break;
            default:
                if (!JsonNode.DeepEquals(expected, actual))
                {
                    Add(differences, max, path, Show(expected), Show(actual));
                }
                break;
        }
    }

    private static void CompareArrays(
        JsonArray expected, JsonArray actual, List<string> path, Func<IReadOnlyList<string>, Additions> additions, List<string> differences, int max)
    {
        var kind = additions(path);
        if (kind == Additions.Members)
        {
            // Each element the snapshot holds, somewhere in the live array.
            for (var i = 0; i < expected.Count; i++)
            {
                if (!actual.Any(element => JsonNode.DeepEquals(expected[i], element)))
                {
                    path.Add($"[{i}]");
                    Add(differences, max, path, Show(expected[i]), "(no equal element in the live array)");
                    path.RemoveAt(path.Count - 1);
                }
            }
            return;
        }
        if (kind == Additions.None && expected.Concat(actual).All(element => element is JsonValue or null))
        {
            // A list of names or numbers reads best whole: one element added or removed would shift every later one.
            if (!JsonNode.DeepEquals(expected, actual))
            {
                Add(differences, max, path, Show(expected), Show(actual));
            }
            return;
        }
        var length = kind == Additions.Appended ? expected.Count : Math.Max(expected.Count, actual.Count);
        for (var i = 0; i < length; i++)
        {
            path.Add($"[{i}]");
            if (i >= actual.Count)
            {
                Add(differences, max, path, Show(expected[i]), "(missing)");
            }
            else if (i >= expected.Count)
            {
                Add(differences, max, path, "(missing)", Show(actual[i]));
            }
            else
            {
                Compare(expected[i], actual[i], path, additions, differences, max);
            }
            path.RemoveAt(path.Count - 1);
        }
    }

    private static bool Matches(string[] pattern, IReadOnlyList<string> path) =>
        pattern.Length == path.Count && pattern.Zip(path).All(p => p.First == "*" || p.First == p.Second);

    private static void Add(List<string> differences, int max, List<string> path, string expected, string actual)
    {
        if (differences.Count < max)
        {
            differences.Add($"{Render(path)}: expected {expected}, actual {actual}");
        }
    }

    /// <summary>A JSON path: <c>$.paths['/api/orders'].post.responses['400']</c>.</summary>
    public static string Render(IEnumerable<string> path) =>
        "$" + string.Concat(path.Select(segment =>
            segment.StartsWith('[') ? segment
            : PlainName().IsMatch(segment) ? "." + segment
            : $"['{segment.Replace("'", "\\'", StringComparison.Ordinal)}']"));

    private static string Show(JsonNode? node)
    {
        var text = node?.ToJsonString(Snapshots.Compact) ?? "null";
        return text.Length <= MaxValueLength ? text : text[..MaxValueLength] + $"… ({text.Length} characters)";
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex PlainName();
}
