using System.Text.RegularExpressions;
using Envio.AppHost.Hosting;
using Envio.ConsumerService.Persistence;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;
using YamlDotNet.RepresentationModel;

namespace Envio.Tests.Deployment;

/// <summary>
/// The single server in production shape: pinned images, SQL Server's edition and memory, the TLS mode its health
/// check shares with the consumer, an external-database variant that starts, a fixed network for the trusted proxy,
/// the broker's capacity guards and its Erlang cookie kept out of the data volume.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes, bash scripts
public sealed partial class ComposeProductionTests
{
    [Fact]
    public void Every_image_is_pinned_to_a_release_and_sql_server_is_the_one_the_app_host_names()
    {
        foreach (var (name, node) in ComposeFile.Services().Children.Select(s => (((YamlScalarNode)s.Key).Value!, (YamlMappingNode)s.Value)))
        {
            var image = ComposeFile.Scalar(node, "image")!;
            if (image.StartsWith("${ENVIO_REGISTRY", StringComparison.Ordinal))
            {
                continue; // Envio's own, tagged ENVIO_VERSION
            }
            var tag = image[(image.LastIndexOf(':') + 1)..];
            Assert.DoesNotContain("latest", tag, StringComparison.OrdinalIgnoreCase);
            Assert.True(PinnedTag().IsMatch(tag), $"{name}: {image} is not pinned to a release (x.y.z or a SQL Server CU).");
        }
        Assert.Equal($"{SqlServerDeployment.Registry}/{SqlServerDeployment.Image}:{SqlServerDeployment.Tag}", ComposeFile.Scalar(ComposeFile.Service("sqlserver"), "image"));
        Assert.Equal(ComposeFile.Scalar(ComposeFile.Service("sqlserver"), "image"), ComposeFile.Scalar(ComposeFile.Service("sqlserver-bootstrap"), "image"));
        Assert.EndsWith(":" + RabbitMQDeploymentResource.Tag, ComposeFile.Scalar(ComposeFile.Service("messaging"), "image"), StringComparison.Ordinal);
    }

    [Fact]
    public void Sql_server_runs_a_production_edition_within_a_memory_limit_the_host_has_room_for()
    {
        var sqlserver = ComposeFile.Service("sqlserver");
        var environment = ComposeFile.Environment(sqlserver);
        Assert.Equal("${MSSQL_PID:-Standard}", environment["MSSQL_PID"]);
        // .env.template sets it explicitly, and says which editions are not for production.
        Assert.Equal("Standard", ComposeFile.Template()["MSSQL_PID"]);
        var template = File.ReadAllText(ComposeFile.PathOf(".env.template"));
        Assert.Matches(@"Developer is NOT licensed for\s*(#\s*)?production", template);
        Assert.Contains("Express", template, StringComparison.Ordinal);

        var sqlLimit = int.Parse(environment["MSSQL_MEMORY_LIMIT_MB"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(SqlServerDeployment.MemoryLimitMegabytes, sqlLimit);
        Assert.InRange(sqlLimit, 2048, ComposeFile.MemoryLimit(sqlserver)!.Value - 256); // SQL Server's minimum; room for its threads

        // Everything the default and observability profiles start, consumers replicated, fits the recommended 8 GB host
        // with 1 GB left for the system and Docker.
        var replicas = int.Parse(Regex.Match(ComposeFile.Scalar((YamlMappingNode)ComposeFile.Get(ComposeFile.Service("consumer"), "deploy")!, "replicas")!, @":-(\d+)").Groups[1].Value,
            System.Globalization.CultureInfo.InvariantCulture);
        var total = 0;
        foreach (var (name, profiles) in ComposeFile.Profiles())
        {
            if (profiles.Count > 0 && !profiles.Any(p => p is "sqlserver" or "observability"))
            {
                continue;
            }
            var limit = ComposeFile.MemoryLimit(ComposeFile.Service(name));
            if (name == "sqlserver-bootstrap")
            {
                continue; // one-shot, exits before the consumers start
            }
            Assert.True(limit is not null, $"{name} has no memory limit.");
            total += limit!.Value * (name == "consumer" ? replicas : 1);
        }
        Assert.InRange(total, 1, 7 * 1024);
    }

    /// <summary>
    /// "Healthy" must mean the consumer can connect: the health check and the bootstrap step connect as the consumer
    /// does (TCP to the service's name, TLS mandatory, the certificate verified), in the mode the consumer's
    /// connection string asks for, which the consumer accepts outside Development.
    /// </summary>
    [Fact]
    public void Sql_servers_health_check_and_bootstrap_connect_in_the_consumers_tls_mode()
    {
        var probe = string.Join(' ', ComposeFile.Sequence((YamlMappingNode)ComposeFile.Get(ComposeFile.Service("sqlserver"), "healthcheck")!, "test"));
        var bootstrap = ComposeFile.Sequence(ComposeFile.Service("sqlserver-bootstrap"), "command");
        var connection = new SqlConnectionStringBuilder(SqlServerServerResource.VerifiedEncryption);
        var mode = connection.Encrypt == SqlConnectionEncryptOption.Strict ? "-Ns" : connection.Encrypt == SqlConnectionEncryptOption.Mandatory ? "-Nm" : "none";

        Assert.Contains("-S tcp:sqlserver,1433", probe, StringComparison.Ordinal);
        Assert.Contains($" {mode} ", probe, StringComparison.Ordinal);
        Assert.Contains("SSL_CERT_FILE=/etc/envio/tls/ca.crt", probe, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(^|\s)-C(\s|$)", probe); // -C would trust any certificate
        Assert.Contains(mode, bootstrap);
        Assert.DoesNotContain("-C", bootstrap);
        Assert.Equal(SqlServerDeployment.SqlcmdEncryption, mode);

        Assert.False(connection.TrustServerCertificate);
        Assert.Null(VerifiedDatabaseLink.Shortfall(StoreEngine.SqlServer, "Server=sqlserver,1433;" + SqlServerServerResource.VerifiedEncryption));
        // mssql.conf forces encryption with the certificate the consumer pins.
        var configuration = File.ReadAllLines(ComposeFile.PathOf("sqlserver", "mssql.conf"));
        Assert.Contains("forceencryption = 1", configuration);
        Assert.Contains("tlscert = " + connection.ServerCertificate, configuration);
    }

    /// <summary>
    /// Each profile combination an operator runs starts: whatever a service waits for is started with it. Without
    /// "sqlserver" (a database of your own) a consumer still runs, waiting for nothing of SQL Server's.
    /// </summary>
    [Fact]
    public void Every_profile_combination_starts_what_its_services_wait_for_and_an_external_database_has_a_consumer()
    {
        var profiles = ComposeFile.Profiles();
        foreach (var active in new[] { new[] { "sqlserver" }, ["external-db"], ["sqlserver", "observability", "grafana"], ["external-db", "observability"] })
        {
            var running = profiles.Where(p => p.Value.Count == 0 || p.Value.Intersect(active).Any()).Select(p => p.Key).ToHashSet();
            Assert.Single(running, s => ComposeFile.Scalar(ComposeFile.Service(s), "image")!.Contains("/envio/envio-consumer:", StringComparison.Ordinal));
            foreach (var service in running)
            {
                if (ComposeFile.Get(ComposeFile.Service(service), "depends_on") is YamlMappingNode dependencies)
                {
                    foreach (var dependency in dependencies.Children.Keys.Select(k => ((YamlScalarNode)k).Value!))
                    {
                        Assert.True(running.Contains(dependency),
                            $"With COMPOSE_PROFILES={string.Join(',', active)}, {service} waits for {dependency}, which does not start.");
                    }
                }
            }
        }
        Assert.Equal("sqlserver", ComposeFile.Template()["COMPOSE_PROFILES"]);
    }

    /// <summary>With your own database, make-secrets.sh (run again to rotate a password) keeps the connection string you wrote.</summary>
    [Fact]
    public async Task With_an_external_database_make_secrets_keeps_its_connection_string()
    {
        var ct = TestContext.Current.CancellationToken;
        var directory = System.IO.Directory.CreateTempSubdirectory("envio-secrets-").FullName;
        try
        {
            var script = ComposeFile.PathOf("make-secrets.sh");
            Assert.Equal(0, (await Repository.RunAsync("bash", [script, directory], ct)).ExitCode);
            var connection = Path.Combine(directory, "enviodb-connection");
            const string Own = "Server=db.example.com,1433;Database=enviodb;User ID=envio;Password=x;Encrypt=Mandatory;TrustServerCertificate=false";
            await File.WriteAllTextAsync(connection, Own, ct);

            var (exitCode, output) = await Repository.RunAsync("bash", [script, directory], ct,
                new Dictionary<string, string> { ["COMPOSE_PROFILES"] = "external-db,observability" });
            Assert.True(exitCode == 0, output);
            Assert.Equal(Own, await File.ReadAllTextAsync(connection, ct));

            // With SQL Server here, it is rewritten from the password (a rotation reaches the consumer).
            (exitCode, output) = await Repository.RunAsync("bash", [script, directory], ct, new Dictionary<string, string> { ["COMPOSE_PROFILES"] = "sqlserver" });
            Assert.True(exitCode == 0, output);
            Assert.StartsWith("Server=sqlserver,1433;", await File.ReadAllTextAsync(connection, ct), StringComparison.Ordinal);
        }
        finally
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The network's gateway, where a proxy on the host comes from, is known before the first start.</summary>
    [Fact]
    public void The_network_is_pinned_and_the_trusted_proxy_is_its_gateway()
    {
        var network = (YamlMappingNode)((YamlMappingNode)ComposeFile.Root()["networks"])["default"];
        var config = (YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)network["ipam"])["config"]).Children.Single();
        Assert.Equal("${ENVIO_SUBNET:-172.30.80.0/24}", ((YamlScalarNode)config["subnet"]).Value);
        Assert.Equal("${ENVIO_GATEWAY:-172.30.80.1}", ((YamlScalarNode)config["gateway"]).Value);

        var template = ComposeFile.Template();
        Assert.Equal("172.30.80.0/24", template["ENVIO_SUBNET"]);
        Assert.Equal(template["ENVIO_GATEWAY"] + "/32", template["API_TRUSTED_PROXY_NETWORK"]);
        Assert.True(System.Net.IPNetwork.Parse(template["ENVIO_SUBNET"]).Contains(System.Net.IPAddress.Parse(template["ENVIO_GATEWAY"])));
        Assert.Equal("${API_TRUSTED_PROXY_NETWORK:-}", ComposeFile.Environment(ComposeFile.Service("api"))["Envio__Api__ForwardedHeaders__KnownNetworks__0"]);
    }

    [Fact]
    public void The_broker_blocks_publishers_before_it_runs_out_of_memory_or_disk()
    {
        var configuration = File.ReadAllLines(ComposeFile.PathOf("rabbitmq", "rabbitmq.conf"));
        var watermark = configuration.Single(l => l.StartsWith("vm_memory_high_watermark.absolute = ", StringComparison.Ordinal));
        Assert.Matches(@"= \d+GB$", watermark);
        var watermarkMegabytes = int.Parse(Regex.Match(watermark, @"(\d+)GB").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * 1024;
        Assert.InRange(watermarkMegabytes, 256, ComposeFile.MemoryLimit(ComposeFile.Service("messaging"))!.Value * 3 / 4);
        Assert.Contains(configuration, l => Regex.IsMatch(l, @"^disk_free_limit\.absolute = \d+GB$"));

        // The work-queue limit: beyond it the API answers 503 with Retry-After, and the guide says so.
        var guide = File.ReadAllText(Path.Combine(Repository.Root, "deploy", "README.md"));
        Assert.Matches(@"WORK_QUEUE_MAX_LENGTH[\s\S]{0,600}503[^\n]*Retry-After", guide);
    }

    /// <summary>
    /// The Erlang cookie (the whole credential for the node's distribution port) is a secret make-secrets.sh writes,
    /// mounted read-only over the data volume's, so a copy of the volume holds none; distribution stays on loopback.
    /// </summary>
    [Fact]
    public async Task The_erlang_cookie_is_a_generated_secret_mounted_over_the_data_volume()
    {
        var ct = TestContext.Current.CancellationToken;
        var mounts = ComposeFile.Sequence(ComposeFile.Service("messaging"), "volumes");
        Assert.Contains("./secrets/erlang.cookie:/var/lib/rabbitmq/.erlang.cookie:ro", mounts);
        Assert.Contains("envio-messaging-data:/var/lib/rabbitmq", mounts);
        Assert.DoesNotContain("RABBITMQ_ERLANG_COOKIE", ComposeFile.Environment(ComposeFile.Service("messaging")).Keys); // deprecated, and visible in `docker inspect`

        var directory = System.IO.Directory.CreateTempSubdirectory("envio-secrets-").FullName;
        try
        {
            var (exitCode, output) = await Repository.RunAsync("bash", [ComposeFile.PathOf("make-secrets.sh"), directory], ct);
            Assert.True(exitCode == 0, output);
            var cookie = Path.Combine(directory, "erlang.cookie");
            Assert.Matches("^[0-9a-f]{64}$", (await File.ReadAllTextAsync(cookie, ct)).Trim());
            Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(cookie)); // Erlang refuses a cookie others can read
            var first = await File.ReadAllTextAsync(cookie, ct);
            (exitCode, output) = await Repository.RunAsync("bash", [ComposeFile.PathOf("make-secrets.sh"), directory], ct);
            Assert.True(exitCode == 0, output);
            Assert.Equal(first, await File.ReadAllTextAsync(cookie, ct)); // kept: a new one would lock the CLI out of a cluster
        }
        finally
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }

        // Every node of the three-node variant mounts the same secret.
        var cluster = await File.ReadAllTextAsync(ComposeFile.PathOf("docker-compose.cluster.yml"), ct);
        Assert.Equal(2, Regex.Count(cluster, @"- \./secrets/erlang\.cookie:/var/lib/rabbitmq/\.erlang\.cookie:ro"));
        Assert.DoesNotContain("rabbitmq/erlang.cookie", cluster, StringComparison.Ordinal);
        Assert.Contains("distribution.listener.interface = 127.0.0.1", File.ReadAllLines(ComposeFile.PathOf("rabbitmq", "rabbitmq.conf")));
    }

    /// <summary>x.y.z with an optional suffix (4.3.6-management, v3.5.0, 0.131.0), or a SQL Server CU (2022-CU27-ubuntu-22.04).</summary>
    [GeneratedRegex(@"^(v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?|\d{4}-CU\d+(-GDR\d*)?-ubuntu-\d+\.\d+)$")]
    private static partial Regex PinnedTag();
}
