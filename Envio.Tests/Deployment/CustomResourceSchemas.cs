using System.Text.Json;
using System.Text.Json.Nodes;
using Envio.Tests.Support;
using Json.Schema;

namespace Envio.Tests.Deployment;

/// <summary>
/// The operators' resources checked against the openAPIV3Schema their CRDs publish (deploy/kubernetes/schemas, each
/// file naming its repository, tag and commit). A CRD's schema lets unknown fields through and the API server prunes
/// them silently; here, as with strict field validation, an unknown field is an error: every object schema that lists
/// its properties, and does not preserve unknown fields, gets <c>additionalProperties: false</c>.
/// </summary>
internal static class CustomResourceSchemas
{
    private static readonly string Directory = Path.Combine(Repository.Root, "deploy", "kubernetes", "schemas");

    private static readonly Lazy<Dictionary<string, JsonSchema>> Schemas = new(Load);

    /// <summary>Draft 2020-12 lets the OpenAPI and Kubernetes keywords (nullable, x-kubernetes-*) stand as annotations.</summary>
    private static readonly BuildOptions Draft202012 = new() { Dialect = Dialect.Draft202012 };

    public static IReadOnlySet<string> Kinds => Schemas.Value.Keys.ToHashSet();

    public static bool Knows(JsonObject item) => Schemas.Value.ContainsKey($"{item["apiVersion"]}/{item["kind"]}");

    public static List<string> Problems(JsonObject item)
    {
        var schema = Schemas.Value[$"{item["apiVersion"]}/{item["kind"]}"];
        var results = schema.Evaluate(JsonSerializer.SerializeToElement(item), new EvaluationOptions { OutputFormat = OutputFormat.Hierarchical });
        return [.. Failures(results)];
    }

    /// <summary>The errors of failed subschemas only: a branch of an anyOf that another branch satisfied is no error.</summary>
    private static IEnumerable<string> Failures(EvaluationResults results) =>
        results.IsValid
            ? []
            : (results.Errors ?? new Dictionary<string, string>()).Select(e => $"{results.InstanceLocation}: {e.Value} ({e.Key})")
                .Concat((results.Details ?? []).SelectMany(Failures));

    private static Dictionary<string, JsonSchema> Load()
    {
        var schemas = new Dictionary<string, JsonSchema>();
        foreach (var file in System.IO.Directory.GetFiles(Directory, "*.json"))
        {
            var vendored = JsonNode.Parse(File.ReadAllText(file))!;
            var source = vendored["x-source"]!;
            var schema = Strict(vendored["schema"]!.DeepClone());
            // A built schema keeps reading its JsonElement: one that owns its memory. Each has its own base URI: the
            // schemas are anonymous, and the registry keys them by it.
            schemas[$"{source["apiVersion"]}/{source["kind"]}"] = JsonSchema.Build(JsonSerializer.SerializeToElement(schema), Draft202012, baseUri: new Uri($"https://envio.invalid/schemas/{Path.GetFileName(file)}"));
        }
        return schemas;
    }

    /// <summary>Refuses unknown fields along the structural schema (properties, items, additionalProperties).</summary>
    private static JsonNode Strict(JsonNode schema)
    {
        if (schema is not JsonObject node)
        {
            return schema;
        }
        if (node["properties"] is JsonObject properties)
        {
            foreach (var (_, property) in properties)
            {
                Strict(property!);
            }
            if (node["additionalProperties"] is null && node["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() != true)
            {
                node["additionalProperties"] = false;
            }
        }
        if (node["items"] is { } items)
        {
            Strict(items);
        }
        if (node["additionalProperties"] is JsonObject additional)
        {
            Strict(additional);
        }
        return node;
    }
}
