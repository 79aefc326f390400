using System.Text.Json;
using System.Text.RegularExpressions;
using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>
/// docs/deployment-manifest.md lists, from aspire-manifest.json, what a tool deploying the manifest loses (Aspirate
/// drops bind mounts and leaves placeholders in args as written; a project cannot be given a file): the manifest may
/// not gain such an item the page does not list, nor the page keep one the manifest no longer has.
/// </summary>
public sealed partial class ManifestLossesTests
{
    private const string Page = "docs/deployment-manifest.md";

    [Fact]
    public void Every_bind_mount_is_listed() =>
        AssertListed("## Bind mounts", Resources()
            .SelectMany(resource => Array(resource.Value, "bindMounts")
                .Select(mount => (resource.Name, mount.GetProperty("target").GetString()!))));

    [Fact]
    public void Every_placeholder_in_args_is_listed() =>
        AssertListed("## Placeholders in `args`", Resources()
            .SelectMany(resource => Array(resource.Value, "args")
                .Select(argument => argument.GetString()!)
                .Where(argument => argument.Contains('{', StringComparison.Ordinal))
                .Select(argument => (resource.Name, argument))));

    [Fact]
    public void Every_file_a_project_expects_is_listed()
    {
        var resources = Resources().ToDictionary(resource => resource.Name, resource => resource.Value);
        AssertListed("## Files a project expects", resources
            .Where(resource => resource.Value.GetProperty("type").GetString() == "project.v0")
            .SelectMany(project => project.Value.GetProperty("env").EnumerateObject()
                .SelectMany(variable => AbsolutePath().Matches(WithConnectionStrings(variable.Value.GetString()!, resources)))
                .Select(path => (project.Key, path.Groups["path"].Value)))
            .Distinct());
    }

    [Fact]
    public void The_page_reads_a_table_row_as_resource_and_item()
    {
        var rows = Rows("## Placeholders in `args`");

        Assert.Contains(("sqlserver-bootstrap", "tcp:{sqlserver.bindings.tcp.host},{sqlserver.bindings.tcp.port}"), rows);
    }

    private static void AssertListed(string section, IEnumerable<(string Resource, string Item)> inManifest)
    {
        var expected = inManifest.ToHashSet();
        var listed = Rows(section);
        var unlisted = expected.Except(listed).Select(row => $"`{row.Resource}` `{row.Item}`").ToList();
        var stale = listed.Except(expected).Select(row => $"`{row.Resource}` `{row.Item}`").ToList();
        Assert.True(unlisted.Count == 0,
            $"aspire-manifest.json has what a deployment tool loses and {Page} (\"{section}\") does not list: {string.Join(", ", unlisted)}. " +
            "Add a row saying where compose and the Kubernetes base give it.");
        Assert.True(stale.Count == 0, $"{Page} (\"{section}\") lists what aspire-manifest.json no longer has: {string.Join(", ", stale)}.");
    }

    /// <summary>The first two cells, in backticks, of each row of the table under <paramref name="heading"/>.</summary>
    private static HashSet<(string Resource, string Item)> Rows(string heading)
    {
        var lines = File.ReadAllLines(Path.Combine(Repository.Root, Page));
        var start = System.Array.IndexOf(lines, heading);
        Assert.True(start >= 0, $"{Page} has no heading '{heading}'.");
        return lines.Skip(start + 1)
            .TakeWhile(line => !line.StartsWith("## ", StringComparison.Ordinal))
            .Select(line => Row().Match(line))
            .Where(match => match.Success)
            .Select(match => (match.Groups["resource"].Value, match.Groups["item"].Value))
            .ToHashSet();
    }

    private static IEnumerable<(string Name, JsonElement Value)> Resources()
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repository.Root, "aspire-manifest.json")));
        return manifest.RootElement.GetProperty("resources").EnumerateObject()
            .Select(resource => (resource.Name, resource.Value.Clone()))
            .ToList();
    }

    private static IEnumerable<JsonElement> Array(JsonElement resource, string property) =>
        resource.TryGetProperty(property, out var items) ? items.EnumerateArray() : [];

    /// <summary>A value with each <c>{name.connectionString}</c> replaced by that resource's connection string.</summary>
    private static string WithConnectionStrings(string value, IReadOnlyDictionary<string, JsonElement> resources) =>
        ConnectionStringReference().Replace(value, reference =>
            resources.TryGetValue(reference.Groups["name"].Value, out var resource)
                ? WithConnectionStrings(resource.GetProperty("connectionString").GetString()!, resources)
                : reference.Value);

    [GeneratedRegex(@"^\| `(?<resource>[^`]+)` \| `(?<item>[^`]+)` \|")]
    private static partial Regex Row();

    /// <summary>A file path as a whole value or after <c>=</c> in a connection string (not a URI's path).</summary>
    [GeneratedRegex(@"(?:^|[=;])(?<path>/[\w./-]+)")]
    private static partial Regex AbsolutePath();

    [GeneratedRegex(@"\{(?<name>[\w-]+)\.connectionString\}")]
    private static partial Regex ConnectionStringReference();
}
