using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Nodes;
using Envio.Contracts;

namespace Envio.Tests.Support;

/// <summary>
/// Valid objects of any registered type for the generic tests: the type's own example (its record's <c>Example</c>, or
/// the one the API reference makes from its rules), each with a new id and its texts varied by a seed, so that no two
/// samples are alike and every one still meets the type's rules.
/// </summary>
public static class Samples
{
    /// <summary>Every registered type's name: the data of the tests that run once per type.</summary>
    public static TheoryData<string> TypeNames() => [.. DataObjectTypes.Registered.Select(type => type.Name)];

    public static DataObjectType TypeNamed(string name) => DataObjectTypes.Registered.ByName(name)!;

    public static T Create<T>(DataObjectType<T> type, int seed) where T : class
    {
        var json = Envio.ApiService.Endpoints.DataObjectExamples.Of(type).AsObject();
        Vary(json, type.Members, seed);
        json[type.Id.JsonName] = Guid.CreateVersion7().ToString();
        var value = type.Deserialize(JsonSerializer.SerializeToUtf8Bytes(json))!;
        var errors = new Dictionary<string, List<string>>();
        type.Validate(value, "", errors);
        Assert.True(errors.Count == 0, $"the sample {type.Name} is not valid: {string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}"))}");
        return value;
    }

    /// <summary>
    /// An object whose first text the table holds is longer than its column allows: the database refuses it (written
    /// straight to a store, it never meets the rules that would refuse it first).
    /// </summary>
    public static T TooLongForItsColumn<T>(DataObjectType<T> type, int seed) where T : class
    {
        var json = JsonSerializer.SerializeToNode(Create(type, seed), type.Json)!.AsObject();
        Assert.True(Lengthen(json, type.Members), $"{type.Name} has no bounded text to make too long");
        return type.Deserialize(JsonSerializer.SerializeToUtf8Bytes(json))!;
    }

    // Free texts get the seed in front (kept within their maximum); codes, fixed lengths and sealed values stay valid as they are.
    private static void Vary(JsonObject json, IReadOnlyList<DataObjectMember> members, int seed)
    {
        foreach (var member in members)
        {
            switch (member.Kind)
            {
                case MemberKind.Nested when json[member.JsonName] is JsonObject nested:
                    Vary(nested, member.Members, seed);
                    break;
                case MemberKind.Collection when json[member.JsonName] is JsonArray elements:
                    foreach (var element in elements.OfType<JsonObject>())
                    {
                        Vary(element, member.Members, seed);
                    }
                    break;
                case MemberKind.Value when member.ValueType == typeof(string) && !member.IsFixedLength && !member.IsCurrencyCode
                    && member.Attributes.All(a => a is MaxLengthAttribute or MinLengthAttribute or StringLengthAttribute or LengthAttribute or RequiredAttribute)
                    && json[member.JsonName]?.GetValue<string>() is { } text:
                    var varied = $"{seed}-{text}";
                    json[member.JsonName] = member.MaxLength is { } max && varied.Length > max ? varied[..max] : varied;
                    break;
            }
        }
    }

    private static bool Lengthen(JsonObject json, IReadOnlyList<DataObjectMember> members)
    {
        foreach (var member in members)
        {
            if (member.Kind == MemberKind.Value && member.ValueType == typeof(string) && !member.IsSealed && member.MaxLength is { } max)
            {
                json[member.JsonName] = new string('x', max + 1);
                return true;
            }
            if (member.Kind == MemberKind.Nested && json[member.JsonName] is JsonObject nested && Lengthen(nested, member.Members))
            {
                return true;
            }
        }
        return false;
    }
}
