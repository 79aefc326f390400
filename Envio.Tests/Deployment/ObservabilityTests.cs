using System.Text.Json;
using System.Text.RegularExpressions;
using Envio.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Envio.Tests.Deployment;

/// <summary>
/// Watching the compose deployment: every service names itself, the "observability" profile's Prometheus scrapes the
/// services and the broker, and its alert rules are valid (promtool), explained, and built on metrics that exist: the
/// services' instruments as the collector names them, or RabbitMQ's and the probe's documented ones.
/// </summary>
public sealed partial class ObservabilityTests
{
    private static readonly string Observability = ComposeFile.PathOf("observability");

    /// <summary>RabbitMQ's (rabbitmq_prometheus), the blackbox exporter's and Prometheus's own names the rules may use.</summary>
    private static readonly string[] ExternalMetrics =
    [
        "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked", "rabbitmq_queue_messages",
        "rabbitmq_alarms_memory_used_watermark", "rabbitmq_alarms_free_disk_space_watermark", "rabbitmq_alarms_file_descriptor_limit",
        "probe_ssl_earliest_cert_expiry", "probe_success", "up",
        // ASP.NET Core's request duration (ServiceDefaults adds its meter), as the collector names it.
        "http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_count", "http_server_request_duration_seconds_sum",
    ];

    private static readonly string[] Severities = ["warning", "critical"];

    private static readonly string[] PromQlWords = ["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"];

    [Fact]
    public void Every_service_names_itself_and_its_deployment_in_its_telemetry()
    {
        foreach (var (service, name) in new[] { ("api", "api"), ("consumer", "consumer"), ("consumer-external", "consumer") })
        {
            var environment = ComposeFile.Environment(ComposeFile.Service(service));
            Assert.Equal(name, environment["OTEL_SERVICE_NAME"]);
            var attributes = environment["OTEL_RESOURCE_ATTRIBUTES"].Split(',').Select(a => a.Split('=', 2)).ToDictionary(a => a[0], a => a[1]);
            Assert.Equal("envio", attributes["service.namespace"]);
            Assert.Equal("${ENVIO_ENVIRONMENT:-production}", attributes["deployment.environment"]);
        }
    }

    [Fact]
    public void The_observability_profile_runs_a_collector_and_prometheus_that_scrapes_the_services_and_the_broker()
    {
        var profiles = ComposeFile.Profiles();
        foreach (var service in new[] { "otel-collector", "prometheus", "blackbox" })
        {
            Assert.Equal(["observability"], profiles[service]);
        }
        Assert.Equal(["grafana"], profiles["grafana"]);
        Assert.StartsWith("docker.io/otel/opentelemetry-collector-contrib:", ComposeFile.Scalar(ComposeFile.Service("otel-collector"), "image"), StringComparison.Ordinal);
        Assert.Contains("./observability/alerts.yml:/etc/prometheus/alerts.yml:ro", ComposeFile.Sequence(ComposeFile.Service("prometheus"), "volumes"));
        Assert.Contains("http://otel-collector:4317", File.ReadAllText(ComposeFile.PathOf(".env.template")), StringComparison.Ordinal);

        // The collector takes OTLP on 4317 and serves Prometheus on 8889, which Prometheus scrapes, with the broker's own endpoint.
        var collector = Yaml(Path.Combine(Observability, "otel-collector.yaml"));
        Assert.Equal("0.0.0.0:4317", Text(collector, "receivers", "otlp", "protocols", "grpc", "endpoint"));
        Assert.Equal("0.0.0.0:8889", Text(collector, "exporters", "prometheus", "endpoint"));
        var prometheus = Yaml(Path.Combine(Observability, "prometheus.yml"));
        var targets = ((YamlSequenceNode)prometheus["scrape_configs"]).Children.Cast<YamlMappingNode>()
            .SelectMany(job => ((YamlSequenceNode)job["static_configs"]).Children.Cast<YamlMappingNode>())
            .SelectMany(config => ((YamlSequenceNode)config["targets"]).Children.Select(t => ((YamlScalarNode)t).Value!))
            .ToList();
        Assert.Contains("otel-collector:8889", targets);
        Assert.Contains("messaging:15692", targets);
        Assert.Contains("rabbitmq_prometheus", File.ReadAllText(ComposeFile.PathOf("rabbitmq", "enabled_plugins")), StringComparison.Ordinal);
        Assert.Contains("prometheus.return_per_object_metrics = true", File.ReadAllLines(ComposeFile.PathOf("rabbitmq", "rabbitmq.conf")));
    }

    /// <summary>promtool, Prometheus's own checker: the rules and the configuration load as Prometheus would load them.</summary>
    [Fact]
    public async Task Promtool_accepts_the_alert_rules_and_the_prometheus_configuration()
    {
        var ct = TestContext.Current.CancellationToken;
        var promtool = Promtool();
        // A CI run must not pass without the check (test.sh also fails on this skip): scripts/prerequisites.sh --for-tests installs it.
        Assert.False(promtool is null && (Environment.GetEnvironmentVariable("CI") is { Length: > 0 } || Environment.GetEnvironmentVariable("ENVIO_CI") is { Length: > 0 }),
            "promtool is missing in CI: scripts/prerequisites.sh --for-tests installs Debian's prometheus.");
        Assert.SkipWhen(promtool is null, "promtool is not installed (./test.sh installs Debian's prometheus, which has it).");

        var (exitCode, output) = await Repository.RunAsync(promtool!, ["check", "rules", Path.Combine(Observability, "alerts.yml")], ct);
        Assert.True(exitCode == 0, $"promtool check rules:\n{output}");
        (exitCode, output) = await Repository.RunAsync(promtool!, ["check", "config", Path.Combine(Observability, "prometheus.yml")], ct);
        Assert.True(exitCode == 0, $"promtool check config:\n{output}");
        Assert.Contains("SUCCESS", output, StringComparison.Ordinal);
    }

    /// <summary>Each rule says how long, how bad, and why that threshold (what the operator reads when it fires).</summary>
    [Fact]
    public void Every_alert_has_a_duration_a_severity_a_summary_and_the_reason_for_its_threshold()
    {
        var rules = Rules();
        Assert.NotEmpty(rules);
        foreach (var rule in rules)
        {
            var name = Text(rule, "alert");
            Assert.Matches(@"^\d+[smh]$", Text(rule, "for"));
            Assert.Contains(Text(rule, "labels", "severity"), Severities);
            Assert.False(string.IsNullOrWhiteSpace(Text(rule, "annotations", "summary")), $"{name} has no summary.");
            Assert.True(Text(rule, "annotations", "why").Length > 40, $"{name} does not say why its threshold.");
        }
        Assert.Equal(rules.Count, rules.Select(r => Text(r, "alert")).Distinct().Count());
    }

    /// <summary>The conditions an operator must hear of, each with an alert on the metric that shows it.</summary>
    [Theory]
    [InlineData("anything in an error queue", @"rabbitmq_queue_messages_ready\{[^}]*\.error", "1m")]
    [InlineData("a work queue rising for 10 minutes", @"deriv\(rabbitmq_queue_messages_ready", "10m")]
    [InlineData("a consumer in an outage for over 5 minutes", @"envio_consumer_paused\) == 1", "5m")]
    [InlineData("a type paused by an operator for over 5 minutes", @"envio_consumer_operator_paused\) == 1", "5m")]
    [InlineData("publisher nacks", @"envio_publisher_nacked_total", "5m")]
    [InlineData("503s", @"http_response_status_code=""503""", "5m")]
    [InlineData("accepted-to-committed p99 over 1 s", @"histogram_quantile\(0\.99, .*envio_order_end_to_end_duration_seconds_bucket.*\) > 1$", "10m")]
    [InlineData("the broker's memory alarm", @"rabbitmq_alarms_memory_used_watermark", "0m")]
    [InlineData("the broker's disk alarm", @"rabbitmq_alarms_free_disk_space_watermark", "0m")]
    [InlineData("a certificate expiring within 30 days", @"probe_ssl_earliest_cert_expiry.* < 30 \* 86400", "1h")]
    [InlineData("SQL Server's transaction log over 80 % for 10 minutes", @"\(sqlserver_log_space_used_percent\) > 80$", "10m")]
    public void An_alert_watches(string condition, string expression, string duration)
    {
        Assert.True(Rules().Any(r => Regex.IsMatch(Text(r, "expr"), expression) && Text(r, "for") == duration),
            $"No alert for {condition} (an expr matching {expression}, for: {duration}).");
    }

    /// <summary>
    /// A rule on a name nobody exports never fires. Every metric a rule reads is one of the services' instruments as
    /// the collector's Prometheus exporter names it (found in the code), or RabbitMQ's, the probe's or Prometheus's own.
    /// </summary>
    [Fact]
    public void Every_metric_an_alert_reads_is_exported()
    {
        var exported = MetricsDocumentationTests.Instruments().SelectMany(i => i.PrometheusNames()).Concat(ExternalMetrics)
            .Concat(CollectorQueryMetrics().Select(m => m.PrometheusName)).ToHashSet(StringComparer.Ordinal);
        foreach (var rule in Rules())
        {
            foreach (var metric in MetricNames(Text(rule, "expr")))
            {
                Assert.True(exported.Contains(metric), $"{Text(rule, "alert")} reads {metric}, which neither the services nor the broker export.");
            }
        }
        // The translation itself, as the collector writes it: a counter gets _total, seconds get _seconds.
        Assert.Contains("envio_publisher_nacked_total", exported);
        Assert.Contains("envio_order_end_to_end_duration_seconds_bucket", exported);
        Assert.Contains("envio_consumer_paused", exported);
    }

    /// <summary>
    /// SQL Server's log space comes from the collector's own query (the sqlserver receiver's log metrics are Windows-only),
    /// made as a login that reads the server's and the database's state and nothing stored, whose password reaches the
    /// collector as a secret file only, over TLS verified as the consumer's is.
    /// </summary>
    [Fact]
    public async Task Sql_servers_log_space_is_queried_over_tls_by_a_login_that_may_read_state_only()
    {
        var ct = TestContext.Current.CancellationToken;
        var collector = Yaml(Path.Combine(Observability, "otel-collector.yaml"));
        var receiver = (YamlMappingNode)((YamlMappingNode)collector["receivers"])["sqlquery/sqlserver"];
        Assert.Equal("sqlserver", Text(receiver, "driver"));
        var pipeline = ((YamlSequenceNode)((YamlMappingNode)((YamlMappingNode)((YamlMappingNode)collector["service"])["pipelines"])["metrics"])["receivers"]).Children;
        Assert.Contains(pipeline, r => ((YamlScalarNode)r).Value == "sqlquery/sqlserver");
        var query = Assert.Single(((YamlSequenceNode)receiver["queries"]).Children.Cast<YamlMappingNode>());
        Assert.Contains("sys.dm_db_log_space_usage", Text(query, "sql"), StringComparison.Ordinal);
        Assert.Contains("used_log_space_in_percent", CollectorQueryMetrics().Select(m => m.ValueColumn));

        // The datasource: the monitor's login, its password a secret file the collector mounts, TLS verified against ca.crt.
        var source = Regex.Match(Text(receiver, "datasource"),
            @"^sqlserver://(?<user>[^:@]+):\$\{file:/run/secrets/(?<secret>[a-z0-9-]+)\}@(?<host>[a-z0-9-]+):1433\?(?<query>[^#]+)$");
        Assert.True(source.Success, $"The datasource is not sqlserver://<login>:${{file:/run/secrets/<secret>}}@<host>:1433?...: {Text(receiver, "datasource")}");
        var parameters = source.Groups["query"].Value.Split('&').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1], StringComparer.OrdinalIgnoreCase);
        var service = ComposeFile.Service("otel-collector");
        var login = ComposeFile.Environment(ComposeFile.Service("sqlserver-monitor-login"));
        Assert.Equal("sqlserver", source.Groups["host"].Value);
        Assert.Equal(login["ENVIO_MONITOR_LOGIN"], source.Groups["user"].Value);
        Assert.Equal(login["ENVIO_DB_NAME"], parameters["database"]);
        Assert.Equal("true", parameters["encrypt"]);
        Assert.Equal("false", parameters["TrustServerCertificate"]);
        Assert.Contains(ComposeFile.Sequence(service, "volumes"), m => m.EndsWith($":{parameters["certificate"]}:ro", StringComparison.Ordinal) && m.StartsWith("./certs/ca.crt:", StringComparison.Ordinal));
        var secret = source.Groups["secret"].Value;
        Assert.Contains(secret, ComposeFile.Sequence(service, "secrets"));
        Assert.Equal($"/run/secrets/{secret}", login["ENVIO_MONITOR_PASSWORD_FILE"]);
        Assert.Equal($"./secrets/{secret}", ComposeFile.Scalar((YamlMappingNode)((YamlMappingNode)ComposeFile.Root()["secrets"])[secret], "file"));
        Assert.DoesNotContain(ComposeFile.Environment(service).Keys, key => key.Contains("PASS", StringComparison.OrdinalIgnoreCase));

        // make-secrets.sh writes it, letters and digits (it goes unescaped into the URL).
        var directory = System.IO.Directory.CreateTempSubdirectory("envio-secrets-").FullName;
        try
        {
            var (exitCode, output) = await Repository.RunAsync("bash", [ComposeFile.PathOf("make-secrets.sh"), directory], ct);
            Assert.True(exitCode == 0, output);
            Assert.Matches("^[A-Za-z0-9]{32}$", await File.ReadAllTextAsync(Path.Combine(directory, secret), ct));
        }
        finally
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }

        // The login: made with sa by its own step, after the database exists, in the consumer's TLS mode; granted the
        // server's and the database's state to view, and nothing else (no role, no table, no CONTROL).
        var step = ComposeFile.Service("sqlserver-monitor-login");
        Assert.Equal(["sqlserver"], ComposeFile.Profiles()["sqlserver-monitor-login"]);
        Assert.Contains("-Nm", ComposeFile.Sequence(step, "command"));
        Assert.DoesNotContain("-C", ComposeFile.Sequence(step, "command"));
        Assert.Equal("/etc/envio/tls/ca.crt", login["SSL_CERT_FILE"]);
        var script = ComposeFile.Sequence(step, "command")[^1];
        Assert.Contains(ComposeFile.Sequence(step, "volumes"), m => m == $"./sqlserver/{Path.GetFileName(script)}:{script}:ro");
        var statements = File.ReadAllText(ComposeFile.PathOf("sqlserver", Path.GetFileName(script)));
        var grants = Regex.Matches(statements, @"\bGRANT\s+(?<right>[A-Z ]+?)\s+(TO|ON)\b").Select(m => m.Groups["right"].Value).ToList();
        Assert.Equal(["VIEW DATABASE STATE", "VIEW SERVER STATE"], grants.Order(StringComparer.Ordinal));
        Assert.DoesNotMatch(@"(?i)\b(ALTER\s+(SERVER\s+)?ROLE|sp_add(src)?rolemember|sp_addsrvrolemember|ALTER\s+AUTHORIZATION|CONTROL|IMPERSONATE)\b", statements);

        // No SQL Server runs here: the script and the collector's query pass SQL Server's own parser at least.
        foreach (var sql in new[] { statements, Text(query, "sql") })
        {
            new Microsoft.SqlServer.TransactSql.ScriptDom.TSql160Parser(initialQuotedIdentifiers: true).Parse(new StringReader(sql), out var errors);
            Assert.True(errors.Count == 0, string.Join('\n', errors.Select(e => $"{e.Line}: {e.Message}")));
        }
    }

    /// <summary>
    /// The "grafana" profile's dashboard: provisioned from the folder its provider names, which compose mounts, on the
    /// provisioned Prometheus; it shows what an operator watches, and every query reads only metrics that are exported
    /// (the services' instruments, the collector's query, RabbitMQ's) and passes Prometheus's own parser (promtool, each
    /// query as a recording rule), so that no panel stays empty for a misspelt name.
    /// </summary>
    [Fact]
    public async Task The_grafana_dashboard_is_provisioned_and_queries_only_exported_metrics()
    {
        var ct = TestContext.Current.CancellationToken;
        var mounts = ComposeFile.Sequence(ComposeFile.Service("grafana"), "volumes").Select(m => m.Split(':')).ToList();
        var provider = Assert.Single(mounts, m => m[1].StartsWith("/etc/grafana/provisioning/dashboards/", StringComparison.Ordinal));
        var path = Text((YamlMappingNode)Assert.Single(((YamlSequenceNode)Yaml(ComposeFile.PathOf(provider[0]))["providers"]).Children), "options", "path");
        var folder = mounts.SingleOrDefault(m => m[1] == path);
        Assert.True(folder is not null, $"grafana mounts nothing at {path}, the folder its dashboard provider reads.");
        var sources = mounts.Single(m => m[1].StartsWith("/etc/grafana/provisioning/datasources/", StringComparison.Ordinal));
        var datasource = Text((YamlMappingNode)Assert.Single(((YamlSequenceNode)Yaml(ComposeFile.PathOf(sources[0]))["datasources"]).Children), "uid");

        var exported = MetricsDocumentationTests.Instruments().SelectMany(i => i.PrometheusNames()).Concat(ExternalMetrics)
            .Concat(CollectorQueryMetrics().Select(m => m.PrometheusName)).ToHashSet(StringComparer.Ordinal);
        var expressions = new List<string>();
        var titles = new List<string>();
        foreach (var file in System.IO.Directory.GetFiles(ComposeFile.PathOf(folder[0]), "*.json"))
        {
            using var dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(file, ct));
            titles.Add(dashboard.RootElement.GetProperty("title").GetString()!);
            Assert.False(string.IsNullOrEmpty(dashboard.RootElement.GetProperty("uid").GetString()), $"{file} has no uid: Grafana would give it a new one at each start.");
            foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
            {
                var title = panel.GetProperty("title").GetString()!;
                Assert.Equal(datasource, panel.GetProperty("datasource").GetProperty("uid").GetString());
                var targets = panel.GetProperty("targets").EnumerateArray().ToList();
                Assert.True(targets.Count > 0, $"'{title}' queries nothing.");
                foreach (var target in targets)
                {
                    Assert.Equal(datasource, target.GetProperty("datasource").GetProperty("uid").GetString());
                    var expression = target.GetProperty("expr").GetString()!;
                    foreach (var metric in MetricNames(expression))
                    {
                        Assert.True(exported.Contains(metric), $"'{title}' reads {metric}, which neither the services, the collector nor the broker export.");
                    }
                    expressions.Add(expression);
                }
            }
        }
        Assert.Contains("Envio", titles);

        // What an operator watches: accepted and published, 503s, stored, work and error queues, accepted-to-committed
        // p99, the consumers' outage and operators' pauses, the broker's alarms, SQL Server's log.
        foreach (var shown in new[] { @"envio_publisher_confirmed_total", @"messaging_client_sent_messages_total", @"http_response_status_code=""503""",
            @"envio_order_end_to_end_duration_seconds_count", @"rabbitmq_queue_messages_ready\{[^}]*queue=~""envio\[\.\]\[a-z0-9-\]\+""",
            @"rabbitmq_queue_messages_ready\{[^}]*\.?error""", @"histogram_quantile\(0\.99, .*envio_order_end_to_end_duration_seconds_bucket",
            @"envio_consumer_paused", @"envio_consumer_operator_paused", @"rabbitmq_alarms_memory_used_watermark",
            @"rabbitmq_alarms_free_disk_space_watermark", @"sqlserver_log_space_used_percent" })
        {
            Assert.True(expressions.Any(e => Regex.IsMatch(e, shown)), $"No panel of the dashboard queries {shown}.");
        }

        var promtool = Promtool();
        Assert.False(promtool is null && (Environment.GetEnvironmentVariable("CI") is { Length: > 0 } || Environment.GetEnvironmentVariable("ENVIO_CI") is { Length: > 0 }),
            "promtool is missing in CI: scripts/prerequisites.sh --for-tests installs Debian's prometheus.");
        Assert.SkipWhen(promtool is null, "promtool is not installed (./test.sh installs Debian's prometheus, which has it).");
        var rules = Path.Combine(Path.GetTempPath(), $"envio-dashboard-{Guid.NewGuid():N}.yml");
        try
        {
            // Single-quoted YAML: a PromQL query holds double quotes and backslashes, which stay as they are.
            await File.WriteAllLinesAsync(rules, ["groups:", "  - name: dashboard", "    rules:",
                .. expressions.SelectMany((e, i) => new[] { $"      - record: envio_dashboard:query_{i}", $"        expr: '{e.Replace("'", "''", StringComparison.Ordinal)}'" })], ct);
            var (exitCode, output) = await Repository.RunAsync(promtool!, ["check", "rules", rules], ct);
            Assert.True(exitCode == 0, $"promtool check rules on the dashboard's queries:\n{output}");
            Assert.Contains($"SUCCESS: {expressions.Count} rules found", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(rules);
        }
    }

    /// <summary>
    /// The metrics the collector makes itself (its sqlquery receivers' queries), with the name its Prometheus exporter
    /// gives a gauge without a unit: dots to underscores, no suffix (which the test holds them to).
    /// </summary>
    internal static IReadOnlyList<(string Name, string PrometheusName, string ValueColumn)> CollectorQueryMetrics()
    {
        var receivers = (YamlMappingNode)Yaml(Path.Combine(Observability, "otel-collector.yaml"))["receivers"];
        var metrics = receivers.Children.Where(r => ((YamlScalarNode)r.Key).Value!.Split('/')[0] == "sqlquery")
            .SelectMany(r => ((YamlSequenceNode)((YamlMappingNode)r.Value)["queries"]).Children.Cast<YamlMappingNode>())
            .SelectMany(q => ((YamlSequenceNode)q["metrics"]).Children.Cast<YamlMappingNode>())
            .ToList();
        Assert.All(metrics, m => Assert.False(m.Children.ContainsKey("unit"), $"{Text(m, "metric_name")} has a unit: its Prometheus name would get a suffix."));
        Assert.All(metrics, m => Assert.Equal("gauge", Text(m, "data_type")));
        return metrics.Select(m => (Text(m, "metric_name"), Text(m, "metric_name").Replace('.', '_'), Text(m, "value_column"))).ToList();
    }

    /// <summary>The metric names of a PromQL expression: identifiers outside label matchers, ranges and groupings, that call nothing.</summary>
    internal static IEnumerable<string> MetricNames(string expression)
    {
        var bare = Regex.Replace(expression, @"""[^""]*""", "");
        bare = Regex.Replace(bare, @"\{[^}]*\}", "");
        bare = Regex.Replace(bare, @"\[[^\]]*\]", "");
        bare = Regex.Replace(bare, @"\b(by|without|on|ignoring)\s*\([^)]*\)", "");
        return Identifier().Matches(bare).Select(m => m.Value).Where(word => !PromQlWords.Contains(word, StringComparer.OrdinalIgnoreCase)).Distinct();
    }

    private static List<YamlMappingNode> Rules() =>
        ((YamlSequenceNode)Yaml(Path.Combine(Observability, "alerts.yml"))["groups"]).Children.Cast<YamlMappingNode>()
            .SelectMany(group => ((YamlSequenceNode)group["rules"]).Children.Cast<YamlMappingNode>())
            .ToList();

    private static YamlMappingNode Yaml(string path)
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(path);
        yaml.Load(reader);
        return (YamlMappingNode)yaml.Documents[0].RootNode;
    }

    private static string Text(YamlMappingNode node, params string[] path)
    {
        YamlNode current = node;
        foreach (var key in path)
        {
            Assert.True(current is YamlMappingNode mapping && mapping.Children.ContainsKey(key), $"No '{string.Join('.', path)}' in {node}.");
            current = ((YamlMappingNode)current)[key];
        }
        return ((YamlScalarNode)current).Value!;
    }

    private static string? Promtool() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "promtool")).FirstOrDefault(File.Exists);

    [GeneratedRegex(@"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()")]
    private static partial Regex Identifier();
}
