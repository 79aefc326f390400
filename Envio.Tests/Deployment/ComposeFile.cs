using Envio.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Envio.Tests.Deployment;

/// <summary>deploy/compose/docker-compose.yml as YAML, for the deployment tests that read what an operator runs.</summary>
internal static class ComposeFile
{
    public static string Directory { get; } = Path.Combine(Repository.Root, "deploy", "compose");

    public static string PathOf(params string[] parts) => Path.Combine([Directory, .. parts]);

    public static YamlMappingNode Root()
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(PathOf("docker-compose.yml"));
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }

    public static YamlMappingNode Services() => (YamlMappingNode)Root()["services"];

    public static YamlMappingNode Service(string name) => (YamlMappingNode)Services()[name];

    /// <summary>The service's own keys and those it merges in (<c>&lt;&lt;: *anchor</c>), its own first.</summary>
    public static YamlNode? Get(YamlMappingNode service, string key)
    {
        if (service.Children.TryGetValue(key, out var value))
        {
            return value;
        }
        return service.Children.TryGetValue("<<", out var merged) && merged is YamlMappingNode parent ? Get(parent, key) : null;
    }

    public static string? Scalar(YamlMappingNode service, string key) => (Get(service, key) as YamlScalarNode)?.Value;

    public static IReadOnlyList<string> Sequence(YamlMappingNode service, string key) => Get(service, key) switch
    {
        YamlSequenceNode sequence => sequence.Children.Select(c => ((YamlScalarNode)c).Value!).ToList(),
        YamlScalarNode scalar => [scalar.Value!],
        _ => [],
    };

    public static IReadOnlyDictionary<string, string> Environment(YamlMappingNode service) =>
        Get(service, "environment") is YamlMappingNode environment
            ? environment.Children.ToDictionary(e => ((YamlScalarNode)e.Key).Value!, e => ((YamlScalarNode)e.Value).Value ?? "")
            : new Dictionary<string, string>();

    /// <summary>The services' names with the profiles that start them (none: always).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Profiles() =>
        Services().Children.ToDictionary(s => ((YamlScalarNode)s.Key).Value!, s => Sequence((YamlMappingNode)s.Value, "profiles"));

    /// <summary>.env.template's NAME=value lines.</summary>
    public static IReadOnlyDictionary<string, string> Template() =>
        File.ReadAllLines(PathOf(".env.template"))
            .Where(line => line.Length > 0 && line[0] != '#' && line.Contains('=', StringComparison.Ordinal))
            .ToDictionary(line => line[..line.IndexOf('=', StringComparison.Ordinal)], line => line[(line.IndexOf('=', StringComparison.Ordinal) + 1)..]);

    /// <summary>A compose memory size (512M, 1536M, 3G) in megabytes.</summary>
    public static int Megabytes(string size) => size[^1] switch
    {
        'G' or 'g' => int.Parse(size[..^1], System.Globalization.CultureInfo.InvariantCulture) * 1024,
        'M' or 'm' => int.Parse(size[..^1], System.Globalization.CultureInfo.InvariantCulture),
        _ => throw new FormatException($"A memory size this test does not read: {size}"),
    };

    /// <summary>The service's memory limit in megabytes, or null when it has none.</summary>
    public static int? MemoryLimit(YamlMappingNode service) =>
        Get(service, "deploy") is YamlMappingNode deploy && deploy.Children.TryGetValue("resources", out var resources)
            && ((YamlMappingNode)resources).Children.TryGetValue("limits", out var limits)
            && ((YamlMappingNode)limits).Children.TryGetValue("memory", out var memory)
            ? Megabytes(((YamlScalarNode)memory).Value!)
            : null;
}
