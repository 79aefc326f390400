using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Envio.Contracts.DataObjects;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// A ready-to-send example of a type for the interactive reference: the record's own <c>static T Example</c> when it
/// declares one, else one made from its members and their rules (a test sends every type's example and expects 202).
/// </summary>
internal static class DataObjectExamples
{
    private const string FirstId = "0193a6a0-7b1c-7cc2-9d51-3f1e2a4b5c6d";
    private const string SecondId = "0193a6a0-7b1c-7cc2-9d51-3f1e2a4b5c6e";

    /// <summary>The example; <paramref name="second"/> gives another id, so a batch of two is two objects.</summary>
    public static JsonNode Of(DataObjectType type, bool second = false)
    {
        var example = type.ClrType.GetProperty("Example", BindingFlags.Public | BindingFlags.Static) is { } declared && declared.PropertyType == type.ClrType
            ? JsonSerializer.SerializeToNode(declared.GetValue(null), type.JsonTypeInfo)!.AsObject()
            : Made(type.Members);
        example[type.Id.JsonName] = second ? SecondId : FirstId;
        Readable(example, type.Members);
        return example;
    }

    /// <summary>Instants in UTC as people write them (<c>2026-11-27T10:15:00Z</c>), not as the serializer does (<c>+00:00</c>).</summary>
    private static void Readable(JsonObject example, IReadOnlyList<DataObjectMember> members)
    {
        foreach (var member in members)
        {
            switch (example[member.JsonName])
            {
                case JsonObject nested when member.Kind == MemberKind.Nested:
                    Readable(nested, member.Members);
                    break;
                case JsonArray elements when member.Kind == MemberKind.Collection:
                    foreach (var element in elements.OfType<JsonObject>())
                    {
                        Readable(element, member.Members);
                    }
                    break;
                case JsonValue value when member.ValueType == typeof(DateTimeOffset) && value.TryGetValue<DateTimeOffset>(out var instant) && instant.Offset == TimeSpan.Zero:
                    example[member.JsonName] = instant.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFFK", CultureInfo.InvariantCulture);
                    break;
            }
        }
    }

    private static JsonObject Made(IReadOnlyList<DataObjectMember> members)
    {
        var example = new JsonObject();
        foreach (var member in members)
        {
            example[member.JsonName] = member.Kind switch
            {
                MemberKind.Nested => Made(member.Members),
                MemberKind.Collection => new JsonArray(Enumerable.Range(0, Math.Max(1, member.MinLength ?? 1)).Select(_ => (JsonNode)Made(member.Members)).ToArray()),
                _ => ValueOf(member),
            };
        }
        return example;
    }

    private static JsonNode? ValueOf(DataObjectMember member)
    {
        var type = member.ValueType;
        var range = member.Attributes.OfType<RangeAttribute>().FirstOrDefault();
        var minimum = range is null ? (decimal?)null : Convert.ToDecimal(range.Minimum, CultureInfo.InvariantCulture);
        if (type == typeof(string))
        {
            var text = member.IsCurrencyCode ? "BRL"
                : member.Attributes.OfType<EmailAddressAttribute>().Any() ? "ana.souza@example.com"
                : member.IsFixedLength ? new string('A', member.MaxLength!.Value)
                : $"Example {member.Name}";
            return member.MaxLength is { } max && text.Length > max ? text[..max] : text;
        }
        if (type.IsEnum)
        {
            return AttributeRules.EnumNames(type).Values.First();
        }
        return type switch
        {
            _ when type == typeof(Guid) => FirstId,
            _ when type == typeof(decimal) => Math.Max(minimum ?? 0m, 10.50m),
            _ when type == typeof(int) || type == typeof(long) || type == typeof(short) => (long)Math.Max(minimum ?? 1m, 1m),
            _ when type == typeof(bool) => true,
            _ when type == typeof(DateTimeOffset) => "2026-11-27T10:15:00Z",
            _ when type == typeof(DateOnly) => "2026-12-01",
            _ => null,
        };
    }
}
