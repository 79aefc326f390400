using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Envio.Tests.Support;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Envio.Tests.Deployment;

/// <summary>One kustomize layout of deploy/kubernetes as <c>kubectl kustomize</c> renders it, read into JSON.</summary>
internal sealed partial class Rendered(string text, IReadOnlyList<JsonObject> objects)
{
    private static readonly ConcurrentDictionary<string, Lazy<Task<Rendered>>> Cache = new();

    public string Text { get; } = text;

    public IReadOnlyList<JsonObject> Objects { get; } = objects;

    /// <summary>Rendered once per test run: each layout is read by several tests.</summary>
    public static Task<Rendered> OfAsync(string layout) =>
        Cache.GetOrAdd(layout, l => new Lazy<Task<Rendered>>(() => RenderAsync(l))).Value;

    public List<JsonObject> OfKind(string kind) => [.. Objects.Where(o => o["kind"]?.GetValue<string>() == kind)];

    public IEnumerable<JsonObject> Workloads() => Objects.Where(o => o["kind"]?.GetValue<string>() is "Deployment" or "StatefulSet" or "Job");

    private static async Task<Rendered> RenderAsync(string layout)
    {
        var directory = Path.Combine(Repository.Root, "deploy", "kubernetes", layout);
        Assert.SkipWhen(!OnPath("kubectl"), "kubectl is not installed (kubectl kustomize renders the manifests).");
        var (exitCode, output) = await Repository.RunAsync("kubectl", ["kustomize", directory], CancellationToken.None);
        Assert.True(exitCode == 0, $"kubectl kustomize {layout} failed:\n{output}");
        var stream = new YamlStream();
        stream.Load(new StringReader(output));
        var objects = stream.Documents.Select(d => (JsonObject)ToJson(d.RootNode)!).ToList();
        return new Rendered(output, objects);
    }

    private static bool OnPath(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Any(d => File.Exists(Path.Combine(d, command)));

    /// <summary>YAML 1.2's core schema: plain scalars are null, booleans and numbers; quoted ones are strings.</summary>
    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(c =>
            KeyValuePair.Create(((YamlScalarNode)c.Key).Value!, ToJson(c.Value)))),
        YamlSequenceNode sequence => new JsonArray([.. sequence.Children.Select(ToJson)]),
        YamlScalarNode { Style: ScalarStyle.Plain } scalar => Plain(scalar.Value ?? ""),
        YamlScalarNode scalar => JsonValue.Create(scalar.Value ?? ""),
        _ => throw new InvalidOperationException($"Unexpected YAML node {node.NodeType}."),
    };

    private static JsonNode? Plain(string value) => value switch
    {
        "" or "~" or "null" => null,
        "true" => JsonValue.Create(true),
        "false" => JsonValue.Create(false),
        _ when Integer().IsMatch(value) => JsonValue.Create(long.Parse(value, CultureInfo.InvariantCulture)),
        _ when Number().IsMatch(value) => JsonValue.Create(double.Parse(value, CultureInfo.InvariantCulture)),
        _ => JsonValue.Create(value),
    };

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex Integer();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex Number();
}
