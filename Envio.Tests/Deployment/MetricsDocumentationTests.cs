using System.Text.RegularExpressions;
using Envio.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Envio.Tests.Deployment;

/// <summary>
/// docs/operations.md is the operator's list of what the services export: every instrument the code creates is in
/// it, and next to each the alerts (deploy/compose/observability/alerts.yml) that read it.
/// </summary>
public sealed partial class MetricsDocumentationTests
{
    /// <summary>One instrument the services create: its OpenTelemetry name, kind and unit.</summary>
    internal sealed record Instrument(string Name, string Kind, string Unit, string Source)
    {
        /// <summary>The names the collector's Prometheus exporter gives it: dots to underscores, a unit suffix, _total on counters.</summary>
        public IEnumerable<string> PrometheusNames()
        {
            var name = Name.Replace('.', '_') + Unit switch { "s" => "_seconds", "By" => "_bytes", "ms" => "_milliseconds", _ => "" };
            return Kind switch
            {
                "Counter" or "ObservableCounter" => [name + "_total"],
                "Histogram" => [name + "_bucket", name + "_sum", name + "_count"],
                _ => [name],
            };
        }
    }

    /// <summary>Every Meter.CreateX("name", …, "unit", …) in the services' code (the unit is the first string after the name).</summary>
    internal static IReadOnlyList<Instrument> Instruments()
    {
        var sources = Directory.GetDirectories(Repository.Root, "Envio.*")
            .Where(d => !Path.GetFileName(d).Equals("Envio.Tests", StringComparison.Ordinal))
            .SelectMany(d => Directory.GetFiles(d, "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
        var instruments = sources.SelectMany(file => Creation().Matches(File.ReadAllText(file)).Select(m =>
            new Instrument(m.Groups["name"].Value, m.Groups["kind"].Value, m.Groups["unit"].Value, Path.GetRelativePath(Repository.Root, file)))).ToList();
        Assert.NotEmpty(instruments);
        return instruments;
    }

    [Fact]
    public void Every_instrument_the_services_create_is_listed_in_the_operations_guide()
    {
        var rows = MetricRows();
        var instruments = Instruments();
        // The ones reported missing once, and the gauges created outside a field initializer, are found too.
        Assert.Contains(instruments, i => i.Name == "envio.consumer.paused" && i.Kind == "ObservableGauge");
        Assert.Contains(instruments, i => i.Name == "envio.consumer.orders.already_stored");
        Assert.Contains(instruments, i => i.Name == "envio.consumer.client_conflicts");
        foreach (var instrument in instruments)
        {
            Assert.True(rows.ContainsKey(instrument.Name), $"{instrument.Name} ({instrument.Source}) is not in docs/operations.md's metrics table.");
        }
    }

    /// <summary>Each alert is named in the guide, and in the row of every Envio metric it reads.</summary>
    [Fact]
    public void The_operations_guide_names_each_alert_beside_the_metrics_it_reads()
    {
        var guide = File.ReadAllText(Path.Combine(Repository.Root, "docs", "operations.md"));
        var rows = MetricRows();
        var byPrometheusName = Instruments().SelectMany(i => i.PrometheusNames().Select(n => (n, i.Name))).ToDictionary(p => p.n, p => p.Name);
        var yaml = new YamlStream();
        using (var reader = new StreamReader(ComposeFile.PathOf("observability", "alerts.yml")))
        {
            yaml.Load(reader);
        }
        var rules = ((YamlSequenceNode)((YamlMappingNode)yaml.Documents[0].RootNode)["groups"]).Children.Cast<YamlMappingNode>()
            .SelectMany(g => ((YamlSequenceNode)g["rules"]).Children.Cast<YamlMappingNode>());
        foreach (var rule in rules)
        {
            var alert = ((YamlScalarNode)rule["alert"]).Value!;
            Assert.Contains($"`{alert}`", guide, StringComparison.Ordinal);
            foreach (var metric in ObservabilityTests.MetricNames(((YamlScalarNode)rule["expr"]).Value!).Where(byPrometheusName.ContainsKey))
            {
                Assert.True(rows[byPrometheusName[metric]].Contains($"`{alert}`", StringComparison.Ordinal),
                    $"docs/operations.md: the row of {byPrometheusName[metric]} does not name {alert}, which reads it.");
            }
        }
    }

    /// <summary>
    /// The metrics the collector makes itself (SQL Server's log space) are in the guide too: a row of its own each, by
    /// its Prometheus name, naming every alert that reads it.
    /// </summary>
    [Fact]
    public void The_operations_guide_lists_the_collectors_own_metrics_beside_their_alerts()
    {
        var lines = File.ReadAllLines(Path.Combine(Repository.Root, "docs", "operations.md"));
        var yaml = new YamlStream();
        using (var reader = new StreamReader(ComposeFile.PathOf("observability", "alerts.yml")))
        {
            yaml.Load(reader);
        }
        var rules = ((YamlSequenceNode)((YamlMappingNode)yaml.Documents[0].RootNode)["groups"]).Children.Cast<YamlMappingNode>()
            .SelectMany(g => ((YamlSequenceNode)g["rules"]).Children.Cast<YamlMappingNode>())
            .Select(r => (Alert: ((YamlScalarNode)r["alert"]).Value!, Metrics: ObservabilityTests.MetricNames(((YamlScalarNode)r["expr"]).Value!).ToList()))
            .ToList();
        var metrics = ObservabilityTests.CollectorQueryMetrics();
        Assert.NotEmpty(metrics);
        foreach (var (name, prometheusName, _) in metrics)
        {
            var row = lines.SingleOrDefault(l => l.StartsWith("| ", StringComparison.Ordinal) && l.Contains($"`{name}`", StringComparison.Ordinal)
                && l.Contains($"`{prometheusName}`", StringComparison.Ordinal));
            Assert.True(row is not null, $"docs/operations.md has no table row naming the collector's {name} (`{prometheusName}`).");
            foreach (var (alert, _) in rules.Where(r => r.Metrics.Contains(prometheusName)))
            {
                Assert.True(row.Contains($"`{alert}`", StringComparison.Ordinal), $"docs/operations.md: the row of {prometheusName} does not name {alert}, which reads it.");
            }
        }
    }

    /// <summary>The metrics table's rows by instrument name (its second column).</summary>
    private static Dictionary<string, string> MetricRows() =>
        File.ReadAllLines(Path.Combine(Repository.Root, "docs", "operations.md"))
            .Select(line => Row().Match(line))
            .Where(m => m.Success)
            .ToDictionary(m => m.Groups["name"].Value, m => m.Value);

    [GeneratedRegex(@"Create(?<kind>Counter|Histogram|ObservableGauge|ObservableCounter|UpDownCounter|Gauge)(<\w+>)?\(\s*""(?<name>[a-z][a-z0-9._]+)""[^""]*?""(?<unit>[^""]*)""", RegexOptions.Singleline)]
    private static partial Regex Creation();

    [GeneratedRegex(@"^\| `Envio\.(Publisher|Consumer)` \| `(?<name>[^`]+)` \|.*$")]
    private static partial Regex Row();
}
