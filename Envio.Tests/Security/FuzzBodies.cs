using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Envio.Messaging;
using Envio.Tests.Support;

namespace Envio.Tests.Security;

/// <summary>One request body of the fuzz test: where it goes, as what, and the bytes.</summary>
internal sealed record FuzzBody(string Path, string ContentType, byte[] Body, string Mutations);

/// <summary>
/// Bodies made from valid objects (orders from <see cref="SampleOrders"/> by default, or any type's samples) by a seeded random walk of mutations: in the tree
/// (change a value's type, huge or out-of-range values, deep nesting, removed, unknown and multiplied members, control
/// characters), then in the bytes (truncate, flip, delete, insert, duplicate a span), and now and then past the size
/// limit. Some stay valid.
/// </summary>
internal sealed class FuzzBodies(
    int seed, string plural = "orders", string idName = "orderId", string caseVariant = "Total", Func<int, JsonNode>? objectNode = null)
{
    private readonly Func<int, JsonNode> _objectNode = objectNode ?? OrderNode;

    private readonly Random _random = new(seed);

    private static readonly string[] Junk = ["{", "}", "[", "]", ":", ",", "\"", "\\", "null", "-", "e", "\\u0000", "\\ud800", "\u00ff", "\t", "0"];

    public FuzzBody Next(int index)
    {
        var batch = _random.Next(6) == 0;
        JsonNode root = batch
            ? new JsonArray([.. Enumerable.Range(0, _random.Next(1, 4)).Select(k => _objectNode(index * 4 + k))])
            : _objectNode(index * 4);
        var applied = new List<string>();
        var treeMutations = _random.Next(10) == 0 ? 0 : _random.Next(0, 3);
        for (var i = 0; i < treeMutations; i++)
        {
            applied.Add(MutateTree(root));
        }
        var bytes = Encoding.UTF8.GetBytes(root.ToJsonString());
        var byteMutations = _random.Next(3) == 0 ? _random.Next(1, 4) : 0;
        for (var i = 0; i < byteMutations; i++)
        {
            (bytes, var what) = MutateBytes(bytes);
            applied.Add(what);
        }
        if (!batch && _random.Next(200) == 0)
        {
            // Over the single-order limit (1 MiB) with whitespace: still valid JSON, and 413.
            bytes = [(byte)' ', .. Enumerable.Repeat((byte)' ', 1024 * 1024), .. bytes];
            applied.Add("pad beyond the limit");
        }
        var contentType = _random.Next(40) switch
        {
            0 => "text/plain",
            1 => "application/x-www-form-urlencoded",
            2 => "application/json; charset=utf-8",
            3 => "application/problem+json",
            _ => "application/json",
        };
        return new FuzzBody(batch ? $"/api/{plural}/batch" : $"/api/{plural}", contentType, bytes, string.Join(", ", applied));
    }

    private static JsonNode OrderNode(int seed) =>
        JsonSerializer.SerializeToNode(SampleOrders.Create(800_000 + seed, items: 1 + seed % 3), WireFormat.Options)!;

    private string MutateTree(JsonNode root)
    {
        var nodes = new List<JsonNode>();
        Collect(root, nodes);
        var target = nodes[_random.Next(nodes.Count)];
        switch (_random.Next(6))
        {
            case 0 when target.Parent is not null:
                Replace(target, RandomValue());
                return "retype";
            case 1 when target.Parent is JsonObject parent:
                parent.Remove(target.GetPropertyName());
                return "remove";
            case 2 when target is JsonObject obj:
                obj[_random.Next(2) == 0 ? "unknown" + _random.Next(100) : caseVariant] = RandomValue();
                return "add member";
            case 3 when target is JsonArray array && array.Count > 0:
                var copies = _random.Next(3) == 0 ? 1_001 : _random.Next(2, 20);
                var element = array[0];
                for (var i = 0; i < copies; i++)
                {
                    array.Add(element?.DeepClone());
                }
                return $"multiply array ×{copies}";
            case 4 when target is JsonValue value && value.TryGetValue<string>(out var text):
                Replace(target, text + RandomText());
                return "lengthen string";
            default:
                if (target.Parent is null)
                {
                    return "none";
                }
                Replace(target, Nested(_random.Next(1, 120)));
                return "nest";
        }
    }

    private JsonNode? RandomValue() => _random.Next(14) switch
    {
        0 => null,
        1 => true,
        2 => 0,
        3 => -1,
        4 => JsonNode.Parse("1.5"),
        5 => JsonNode.Parse(_random.Next(2) == 0 ? "1e400" : "-99999999999999999999999999999999"),
        6 => JsonNode.Parse("2147483648"),
        7 => "",
        8 => RandomText(),
        9 => new JsonObject(),
        10 => new JsonArray(),
        11 => Guid.NewGuid().ToString(),
        12 => "2026-13-45T99:00:00Z",
        _ => Nested(_random.Next(1, 80)),
    };

    private string RandomText() => _random.Next(8) switch
    {
        0 => new string('x', _random.Next(100, 100_000)),
        1 => "\u0000\u0007\u001b",
        2 => "\u202e\u200b",
        3 => "😀" + new string('é', _random.Next(1, 300)),
        _ => new string((char)_random.Next(32, 127), _random.Next(1, 300)),
    };

    private static JsonNode Nested(int depth)
    {
        JsonNode node = new JsonArray();
        for (var i = 0; i < depth; i++)
        {
            node = i % 2 == 0 ? new JsonArray(node) : new JsonObject { ["a"] = node };
        }
        return node;
    }

    private (byte[] Bytes, string What) MutateBytes(byte[] bytes)
    {
        if (bytes.Length < 2)
        {
            return (bytes, "none");
        }
        var at = _random.Next(bytes.Length);
        switch (_random.Next(6))
        {
            case 0:
                return (bytes[..at], "truncate");
            case 1:
                var flipped = (byte[])bytes.Clone();
                for (var i = _random.Next(1, 6); i > 0; i--)
                {
                    flipped[_random.Next(flipped.Length)] = (byte)_random.Next(256);
                }
                return (flipped, "flip bytes");
            case 2:
                var length = _random.Next(1, Math.Min(40, bytes.Length - at) + 1);
                return ([.. bytes[..at], .. bytes[(at + length)..]], "delete span");
            case 3:
                return ([.. bytes[..at], .. Encoding.UTF8.GetBytes(Junk[_random.Next(Junk.Length)]), .. bytes[at..]], "insert junk");
            case 4:
                var span = bytes[at..Math.Min(bytes.Length, at + _random.Next(1, 80))];
                return ([.. bytes[..at], .. span, .. bytes[at..]], "duplicate span");
            default:
                var first = Array.IndexOf(bytes, (byte)'{');
                if (first < 0)
                {
                    return (bytes, "none");
                }
                var member = Encoding.UTF8.GetBytes($"\"{idName}\":\"{Guid.NewGuid()}\",");
                return ([.. bytes[..(first + 1)], .. member, .. bytes[(first + 1)..]], $"duplicate {idName}");
        }
    }

    private static void Collect(JsonNode? node, List<JsonNode> nodes)
    {
        if (node is null)
        {
            return;
        }
        nodes.Add(node);
        switch (node)
        {
            case JsonObject obj:
                foreach (var (_, child) in obj)
                {
                    Collect(child, nodes);
                }
                break;
            case JsonArray array:
                foreach (var child in array)
                {
                    Collect(child, nodes);
                }
                break;
        }
    }

    private static void Replace(JsonNode target, JsonNode? value)
    {
        switch (target.Parent)
        {
            case JsonObject parent:
                parent[target.GetPropertyName()] = value;
                break;
            case JsonArray parent:
                parent[target.GetElementIndex()] = value;
                break;
        }
    }
}
