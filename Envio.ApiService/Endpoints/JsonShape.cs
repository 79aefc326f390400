using System.Text;
using System.Text.Json;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// A look at a JSON document's shape before it becomes objects: a body of a few megabytes can hold millions of
/// <c>{}</c>, which deserialize into millions of objects before any validator can count them. One pass with the
/// reader (nothing allocated per element) finds an over-long array first.
/// </summary>
internal static class JsonShape
{
    /// <summary>An open object or array: how it is reached from its parent (a member name's bytes, or an index).</summary>
    private record struct Frame(int NameStart, int NameLength, int Index, bool IsArray, int Count);

    /// <summary>
    /// The path of the first array holding more than <paramref name="maxLength"/> elements (<c>""</c> for the root,
    /// <c>[3].items</c> for a nested one), or null when there is none. Malformed JSON is not this method's business:
    /// it answers null and leaves the error to the deserializer, which says where.
    /// </summary>
    public static string? FirstArrayLongerThan(ReadOnlySpan<byte> json, int maxLength)
    {
        var frames = new List<Frame>();
        var (nameStart, nameLength) = (-1, 0);
        var reader = new Utf8JsonReader(json);
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        // Positions, not a string: a name need not even be valid UTF-8 here.
                        (nameStart, nameLength) = ((int)reader.TokenStartIndex + 1, reader.ValueSpan.Length);
                        continue;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        frames.RemoveAt(frames.Count - 1);
                        continue;
                }

                // A value, an object or an array: one more element of the array it is in.
                var frame = new Frame(-1, 0, -1, reader.TokenType == JsonTokenType.StartArray, 0);
                if (frames.Count > 0 && frames[^1] is { IsArray: true } parent)
                {
                    if (parent.Count == maxLength)
                    {
                        return PathOf(frames, json);
                    }
                    frames[^1] = parent with { Count = parent.Count + 1 };
                    frame = frame with { Index = parent.Count };
                }
                else if (frames.Count > 0)
                {
                    frame = frame with { NameStart = nameStart, NameLength = nameLength };
                }
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    frames.Add(frame);
                }
            }
        }
        catch (JsonException)
        {
            // Malformed: the deserializer reports it with its path.
        }
        return null;
    }

    private static string PathOf(List<Frame> frames, ReadOnlySpan<byte> json)
    {
        var path = new StringBuilder();
        foreach (var frame in frames)
        {
            if (frame.Index >= 0)
            {
                path.Append('[').Append(frame.Index).Append(']');
            }
            else if (frame.NameStart >= 0)
            {
                path.Append(path.Length == 0 ? "" : ".").Append(Encoding.UTF8.GetString(json.Slice(frame.NameStart, frame.NameLength)));
            }
        }
        return path.ToString();
    }
}
