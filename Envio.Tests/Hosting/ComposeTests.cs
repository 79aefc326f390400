using System.Text.Json;
using System.Text.RegularExpressions;
using Envio.AppHost.Hosting;
using Envio.ConsumerService.Persistence;
using Envio.Tests.Support;
using YamlDotNet.RepresentationModel;

namespace Envio.Tests.Hosting;

/// <summary>
/// deploy/compose is the deployable form of aspire-manifest.json: every resource, every environment variable and every
/// input of the manifest must map into it, and compose itself must accept the file.
/// </summary>
public sealed partial class ComposeTests
{
    private static readonly string ComposeDirectory = Path.Combine(Repository.Root, "deploy", "compose");

    [Fact]
    public void Every_container_and_project_of_the_manifest_is_a_compose_service_with_the_same_image_and_volumes()
    {
        var services = ComposeServices();
        foreach (var (name, resource) in ManifestResources().Where(r => IsDeployable(r.Resource)))
        {
            Assert.True(services.Children.ContainsKey(name), $"The manifest's '{name}' is not a service in docker-compose.yml.");
            var service = (YamlMappingNode)services[name];
            if (resource.GetProperty("type").GetString() != "container.v0")
            {
                Assert.Contains($"envio-{name}:", Scalar(service, "image")); // built with dotnet publish /t:PublishContainer
                continue;
            }
            Assert.Equal(resource.GetProperty("image").GetString(), Scalar(service, "image"));
            var mounts = service.Children.TryGetValue("volumes", out var volumes)
                ? ((YamlSequenceNode)volumes).Children.Select(v => ((YamlScalarNode)v).Value!).ToList()
                : [];
            foreach (var volume in resource.TryGetProperty("volumes", out var v) ? v.EnumerateArray() : default)
            {
                var mount = $"{volume.GetProperty("name").GetString()}:{volume.GetProperty("target").GetString()}";
                Assert.True(mounts.Contains(mount), $"'{name}' does not mount {mount}.");
            }
            foreach (var bind in resource.TryGetProperty("bindMounts", out var b) ? b.EnumerateArray() : default)
            {
                // The manifest's sources are relative to the repository, compose's to deploy/compose: compare the file.
                var source = Path.GetFileName(bind.GetProperty("source").GetString()!);
                var target = bind.GetProperty("target").GetString()!;
                Assert.True(mounts.Any(m => m.Split(':') is [var from, var to, ..] && Path.GetFileName(from) == source && to == target),
                    $"'{name}' does not mount its {source} at {target}.");
            }
        }
    }

    /// <summary>
    /// Each variable has the manifest's value in compose terms: a literal is the same literal (or a <c>${X:-literal}</c>
    /// default ops may override), an input <c>{x.value}</c> is <c>${X}</c>, and a connection string points at the
    /// compose service's host, port and virtual host with the same settings (compose may add some, such as the
    /// certificate to verify). A variable given as a secret file instead (<c>NAME_FILE: /run/secrets/…</c>) is not
    /// compared.
    /// </summary>
    [Fact]
    public void Every_environment_variable_of_the_manifest_is_set_for_the_same_compose_service_to_the_same_value()
    {
        var services = ComposeServices();
        var manifest = ManifestResources().ToDictionary(r => r.Name, r => r.Resource);
        foreach (var (name, resource) in manifest.Where(r => IsDeployable(r.Value)))
        {
            var environment = Environment(services, name);
            foreach (var variable in resource.TryGetProperty("env", out var env) ? env.EnumerateObject() : default)
            {
                if (!environment.TryGetValue(variable.Name, out var actual))
                {
                    Assert.True(environment.TryGetValue(variable.Name + "_FILE", out var file) && file.StartsWith("/run/secrets/", StringComparison.Ordinal),
                        $"'{name}' gets {variable.Name} in the manifest but not in docker-compose.yml.");
                    continue;
                }
                var expected = ComposeValue.Of(variable.Value.GetString()!, manifest);
                Assert.True(ComposeValue.Matches(expected, actual),
                    $"'{name}': {variable.Name} is '{actual}' in docker-compose.yml; the manifest's value means '{expected}'.");
            }
        }
    }

    [Fact]
    public void Every_input_of_the_manifest_is_a_documented_variable_of_the_env_template_used_by_compose()
    {
        var template = File.ReadAllText(Path.Combine(ComposeDirectory, ".env.template"));
        var compose = File.ReadAllText(Path.Combine(ComposeDirectory, "docker-compose.yml"));
        foreach (var (name, _) in ManifestResources().Where(r => r.Resource.GetProperty("type").GetString() == "parameter.v0"))
        {
            var variable = name.ToUpperInvariant().Replace('-', '_');
            Assert.True(template.Contains($"[{name}]", StringComparison.Ordinal) && template.Contains($"\n{variable}=", StringComparison.Ordinal),
                $".env.template does not document the manifest's input '{name}' as {variable}.");
            Assert.True(compose.Contains("${" + variable, StringComparison.Ordinal), $"docker-compose.yml never uses {variable}.");
        }
    }

    [Fact]
    public void Compose_holds_no_secret_and_connects_over_tls_only()
    {
        var services = ComposeServices();
        foreach (var service in new[] { "api", "consumer" })
        {
            var environment = Environment(services, service);
            Assert.StartsWith("amqps://", environment["ConnectionStrings__messaging"]);
            Assert.EndsWith("/" + BrokerPermissions.VirtualHost, environment["ConnectionStrings__messaging"]);
            foreach (var (key, value) in environment.Where(e => SecretLike().IsMatch(e.Key)))
            {
                Assert.True(value.StartsWith("${", StringComparison.Ordinal), $"{service}: {key} is written in the file instead of coming from .env.");
            }
        }
        var database = Environment(services, "consumer")["ConnectionStrings__enviodb"];
        Assert.Contains("Encrypt=Strict", database, StringComparison.Ordinal);
        Assert.DoesNotContain("TrustServerCertificate", database, StringComparison.OrdinalIgnoreCase);
        Assert.Matches(@"Password=\$\{", database);
    }

    /// <summary>
    /// What the consumer needs to start against compose's SQL Server, which nobody has prepared: a SQL Server
    /// connection string to the service's host and port that names the database (the consumer creates it, then
    /// migrates), encryption verified against a certificate it mounts, and globalization not in invariant mode
    /// (SqlClient opens no connection in it; GlobalizationTests check the build).
    /// </summary>
    [Fact]
    public void The_consumer_is_configured_to_start_against_the_compose_sql_server()
    {
        var services = ComposeServices();
        var consumer = (YamlMappingNode)services["consumer"];
        var environment = Environment(services, "consumer");
        var connectionString = Placeholders().Replace(environment["ConnectionStrings__enviodb"], "placeholder");

        Assert.Equal(StoreEngine.SqlServer, StoreRegistration.DetectEngine("enviodb", connectionString));
        var database = new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(connectionString);
        Assert.Equal("sqlserver,1433", database.DataSource);
        Assert.True(services.Children.ContainsKey("sqlserver"), "compose has no sqlserver service");
        Assert.Equal("enviodb", database.InitialCatalog);
        Assert.Equal(Microsoft.Data.SqlClient.SqlConnectionEncryptOption.Strict, database.Encrypt);
        var mounts = ((YamlSequenceNode)consumer["volumes"]).Children.Select(v => ((YamlScalarNode)v).Value!.Split(':')[1]);
        Assert.Contains(database.ServerCertificate, mounts);
        Assert.False(environment.TryGetValue("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", out var invariant) && invariant is "1" or "true",
            "compose runs the consumer in globalization-invariant mode: SqlClient cannot connect in it.");
        Assert.Equal("service_healthy", Scalar((YamlMappingNode)((YamlMappingNode)consumer["depends_on"])["sqlserver"], "condition"));
    }

    [Fact]
    public void The_brokers_configuration_gives_the_same_permissions_as_the_apphosts_broker()
    {
        var configuration = File.ReadAllLines(Path.Combine(ComposeDirectory, "rabbitmq", "rabbitmq.conf"));
        var expected = BrokerPermissions.Configuration("user-from-env", "password-from-env")
            .Where(line => !line.StartsWith("default_user =", StringComparison.Ordinal) && !line.StartsWith("default_pass =", StringComparison.Ordinal))
            .Select(line => line.Split('#')[0].Trim());
        foreach (var line in expected)
        {
            Assert.Contains(line, configuration);
        }
        Assert.Contains("listeners.tcp = none", configuration);
    }

    [Fact]
    public async Task Compose_accepts_the_file_filled_from_the_template()
    {
        var ct = TestContext.Current.CancellationToken;
        var compose = ComposeCommand();
        if (compose is null)
        {
            Assert.Skip("Neither docker-compose nor `docker compose` is installed (./test.sh installs docker-compose on Debian).");
        }
        var filled = Path.Combine(Path.GetTempPath(), $"envio-compose-{Guid.NewGuid():N}.env");
        await File.WriteAllLinesAsync(filled,
            File.ReadAllLines(Path.Combine(ComposeDirectory, ".env.template")).Select(line => line.EndsWith('=') ? line + "placeholder" : line), ct);
        try
        {
            var (exitCode, output) = await Repository.RunAsync(compose.Value.Command,
                [.. compose.Value.Prefix, "--project-directory", ComposeDirectory, "-f", Path.Combine(ComposeDirectory, "docker-compose.yml"),
                 "--env-file", filled, "config", "-q"], ct);
            Assert.True(exitCode == 0, $"compose refuses docker-compose.yml:\n{output}");

            // And without the secrets, it refuses with a message naming the missing one.
            (exitCode, output) = await Repository.RunAsync(compose.Value.Command,
                [.. compose.Value.Prefix, "--project-directory", ComposeDirectory, "-f", Path.Combine(ComposeDirectory, "docker-compose.yml"),
                 "--env-file", Path.Combine(ComposeDirectory, ".env.template"), "config", "-q"], ct);
            Assert.NotEqual(0, exitCode);
            Assert.Contains("in .env", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(filled);
        }
    }

    /// <summary>Debian's docker-compose (v1), else the Compose plugin of a docker CLI (v2).</summary>
    private static (string Command, string[] Prefix)? ComposeCommand()
    {
        var path = (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':');
        if (path.Select(d => Path.Combine(d, "docker-compose")).FirstOrDefault(File.Exists) is { } v1)
        {
            return (v1, []);
        }
        if (path.Select(d => Path.Combine(d, "docker")).FirstOrDefault(File.Exists) is { } docker
            && Repository.RunAsync(docker, ["compose", "version"], CancellationToken.None).GetAwaiter().GetResult().ExitCode == 0)
        {
            return (docker, ["compose"]);
        }
        return null;
    }

    private static bool IsDeployable(JsonElement resource) =>
        resource.GetProperty("type").GetString() is "container.v0" or "project.v0";

    private static List<(string Name, JsonElement Resource)> ManifestResources()
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(Repository.Root, "aspire-manifest.json")));
        return manifest.RootElement.GetProperty("resources").EnumerateObject().Select(r => (r.Name, r.Value.Clone())).ToList();
    }

    private static YamlMappingNode ComposeServices()
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(ComposeDirectory, "docker-compose.yml"));
        yaml.Load(reader);
        return (YamlMappingNode)((YamlMappingNode)yaml.Documents[0].RootNode)["services"];
    }

    private static Dictionary<string, string> Environment(YamlMappingNode services, string service) =>
        ((YamlMappingNode)((YamlMappingNode)services[service])["environment"]).Children
            .ToDictionary(e => ((YamlScalarNode)e.Key).Value!, e => ((YamlScalarNode)e.Value).Value ?? "");

    private static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node[key]).Value!;

    /// <summary>Compose's <c>${NAME...}</c> substitutions.</summary>
    [GeneratedRegex(@"\$\{[^}]+\}")]
    private static partial Regex Placeholders();

    [GeneratedRegex("PASSWORD|PASS$|Keys__|Password", RegexOptions.IgnoreCase)]
    private static partial Regex SecretLike();
}
