using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Envio.Tests.Compatibility;

/// <summary>
/// An HTTP answer as a snapshot holds it: status, Content-Type, Retry-After and WWW-Authenticate when present, and the
/// body as JSON. Only what changes from run to run is replaced: a problem's <c>traceId</c>, and every UUID the request
/// did not contain (the ids the API generated). Everything else is kept byte for byte, messages included.
/// </summary>
public static partial class Answers
{
    public const string GeneratedUuid = "<generated-uuid>";
    public const string TraceId = "<trace-id>";

    /// <summary>
    /// The answer to a request whose body (and headers) said <paramref name="request"/>; <paramref name="label"/>, when
    /// given, comes first (what was asked, for whoever reads the snapshot).
    /// </summary>
    public static async Task<JsonObject> OfAsync(HttpResponseMessage response, string request, CancellationToken ct, string? label = null)
    {
        var known = Uuid().Matches(request).Select(m => Guid.Parse(m.Value)).ToHashSet();
        var text = await response.Content.ReadAsStringAsync(ct);
        var answer = new JsonObject();
        if (label is not null)
        {
            answer["request"] = label;
        }
        answer["status"] = (int)response.StatusCode;
        answer["contentType"] = response.Content.Headers.ContentType?.ToString();
        if (response.Headers.RetryAfter is { } retryAfter)
        {
            answer["retryAfter"] = retryAfter.ToString();
        }
        if (response.Headers.WwwAuthenticate.Count > 0)
        {
            answer["wwwAuthenticate"] = response.Headers.WwwAuthenticate.ToString();
        }
        answer["body"] = Body(text, known);
        return answer;
    }

    private static JsonNode? Body(string text, HashSet<Guid> known)
    {
        if (text.Length == 0)
        {
            return null;
        }
        try
        {
            return Normalise(JsonNode.Parse(text), known);
        }
        catch (JsonException)
        {
            // Not JSON: kept as the text it is (a snapshot of it is still a snapshot).
            return JsonValue.Create(Generated(text, known));
        }
    }

    private static JsonNode? Normalise(JsonNode? node, HashSet<Guid> known)
    {
        switch (node)
        {
            case JsonObject members:
                foreach (var name in members.Select(m => m.Key).ToList())
                {
                    members[name] = name == "traceId" && members[name] is JsonValue
                        ? JsonValue.Create(TraceId)
                        : Normalise(members[name]?.DeepClone(), known);
                }
                return members;
            case JsonArray elements:
                for (var i = 0; i < elements.Count; i++)
                {
                    elements[i] = Normalise(elements[i]?.DeepClone(), known);
                }
                return elements;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                return JsonValue.Create(Generated(value.GetValue<string>(), known));
            default:
                return node;
        }
    }

    private static string Generated(string text, HashSet<Guid> known) =>
        Uuid().Replace(text, m => known.Contains(Guid.Parse(m.Value)) ? m.Value : GeneratedUuid);

    [GeneratedRegex("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")]
    private static partial Regex Uuid();
}
