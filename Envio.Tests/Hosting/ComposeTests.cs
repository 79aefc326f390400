using System.Text.Json;
using System.Text.RegularExpressions;
using Envio.AppHost.Hosting;
using Envio.ConsumerService.Persistence;
using Envio.Contracts;
using Envio.Messaging;
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
            if (resource.TryGetProperty("entrypoint", out var entrypoint))
            {
                // Compose may put secret-env.sh in front (it turns NAME_FILE into NAME, then runs the rest).
                var expected = new[] { entrypoint.GetString()! }
                    .Concat(resource.TryGetProperty("args", out var args) ? args.EnumerateArray().Select(a => ManifestValue(a.GetString()!)) : [])
                    .ToList();
                var actual = Sequence(service, "entrypoint").Concat(Sequence(service, "command")).SkipWhile(a => a == SecretEnvWrapper).ToList();
                Assert.Equal(expected, actual);
            }
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
    /// The values, not only the names: each manifest variable, with its parameters, host names, ports and connection
    /// strings resolved, equals what compose gives the same service, either in the environment or, for a secret, in
    /// the file a <c>NAME_FILE</c> variable names (as ./make-secrets.sh writes it).
    /// </summary>
    [Fact]
    public void Every_environment_variable_of_the_manifest_has_the_same_value_in_the_same_compose_service()
    {
        var services = ComposeServices();
        using var secrets = GeneratedSecrets.Create();
        foreach (var (name, resource) in ManifestResources().Where(r => IsDeployable(r.Resource)))
        {
            var variables = resource.TryGetProperty("env", out var env) ? env.EnumerateObject().ToList() : [];
            // Aspire writes a connection whose name has a dash twice, the second with an underscore for shells that
            // refuse the dash (ConnectionStrings__enviodb_migrations); .NET reads the first, which compose gives.
            foreach (var variable in variables.Where(v => !variables.Any(other => other.Name != v.Name && other.Name.Replace('-', '_') == v.Name)))
            {
                var actual = ComposeValue(services, name, variable.Name, secrets);
                Assert.True(actual is not null,
                    $"'{name}' gets {variable.Name} in the manifest but neither it nor {variable.Name}_FILE in docker-compose.yml.");
                Assert.True(ManifestValue(variable.Value.GetString()!) == actual,
                    $"'{name}': {variable.Name} is '{ManifestValue(variable.Value.GetString()!)}' in the manifest but '{actual}' in compose.");
            }
        }
    }

    [Fact]
    public void Every_input_of_the_manifest_is_a_documented_variable_of_the_env_template_or_a_secret_file_used_by_compose()
    {
        var template = File.ReadAllText(Path.Combine(ComposeDirectory, ".env.template"));
        var compose = File.ReadAllText(Path.Combine(ComposeDirectory, "docker-compose.yml"));
        var secretsScript = File.ReadAllText(Path.Combine(ComposeDirectory, "make-secrets.sh"));
        var secrets = ComposeSecrets();
        foreach (var (name, resource) in ManifestResources().Where(r => r.Resource.GetProperty("type").GetString() == "parameter.v0"))
        {
            Assert.True(template.Contains($"[{name}]", StringComparison.Ordinal), $".env.template does not document the manifest's input '{name}'.");
            if (IsSecret(resource))
            {
                Assert.True(secrets.TryGetValue(name, out var file) && file == $"./secrets/{name}",
                    $"The manifest's secret '{name}' is not the compose secret '{name}' (file ./secrets/{name}).");
                continue;
            }
            var variable = name.ToUpperInvariant().Replace('-', '_');
            Assert.True(template.Contains($"\n{variable}=", StringComparison.Ordinal), $".env.template does not ask for {variable}.");
            // Compose substitutes it, or make-secrets.sh writes it into the secrets it makes (the broker's users).
            Assert.True(compose.Contains("${" + variable, StringComparison.Ordinal) || secretsScript.Contains("^" + variable + "=", StringComparison.Ordinal),
                $"neither docker-compose.yml nor make-secrets.sh uses {variable}.");
        }
    }

    [Fact]
    public void Compose_holds_no_secret_and_connects_over_tls_only()
    {
        var services = ComposeServices();
        using var secrets = GeneratedSecrets.Create();
        foreach (var (service, _) in services.Children.Select(c => (((YamlScalarNode)c.Key).Value!, c.Value)))
        {
            var mounted = Sequence((YamlMappingNode)services[service], "secrets").ToList();
            foreach (var (key, value) in Environment(services, service).Where(e => SecretLike().IsMatch(e.Key)))
            {
                Assert.True(key.EndsWith("_FILE", StringComparison.Ordinal) && value.StartsWith("/run/secrets/", StringComparison.Ordinal)
                    && mounted.Contains(value["/run/secrets/".Length..]),
                    $"{service}: {key} is not a NAME_FILE naming a secret the service mounts: a secret in the environment.");
            }
        }
        foreach (var service in new[] { "api", "consumer" })
        {
            var broker = ComposeValue(services, service, "ConnectionStrings__messaging", secrets)!;
            Assert.StartsWith("amqps://", broker);
            Assert.EndsWith("/" + BrokerPermissions.VirtualHost, broker);
        }
        var connectionString = ComposeValue(services, "consumer", "ConnectionStrings__enviodb", secrets)!;
        var database = new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(connectionString);
        Assert.Equal(Microsoft.Data.SqlClient.SqlConnectionEncryptOption.Mandatory, database.Encrypt);
        Assert.False(database.TrustServerCertificate);
        Assert.Null(VerifiedDatabaseLink.Shortfall(StoreEngine.SqlServer, connectionString)); // the consumer starts with it
        Assert.Equal("<enviodb-writer-password>", database.Password);
        var migrations = ComposeValue(services, "consumer", "ConnectionStrings__enviodb-migrations", secrets)!;
        Assert.Null(VerifiedDatabaseLink.Shortfall(StoreEngine.SqlServer, migrations));
        Assert.Equal("<enviodb-password>", new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(migrations).Password);
    }

    /// <summary>
    /// <c>ps</c> shows every process's command line: no health check, command or documented command passes a
    /// password there (sqlcmd reads SQLCMDPASSWORD).
    /// </summary>
    [Fact]
    public void No_health_check_or_command_puts_a_password_on_the_command_line()
    {
        var services = ComposeServices();
        var commands = services.Children.Values.Cast<YamlMappingNode>().SelectMany(service =>
            Sequence(service, "entrypoint").Concat(Sequence(service, "command"))
                .Concat(service.Children.TryGetValue("healthcheck", out var check) ? Sequence((YamlMappingNode)check, "test") : []));
        var readme = File.ReadAllLines(Path.Combine(Repository.Root, "deploy", "README.md")).Where(l => l.Contains("sqlcmd", StringComparison.Ordinal));
        foreach (var command in commands.Concat(readme))
        {
            Assert.DoesNotMatch(@"(^|\s)-P(\s|$)", command);
            Assert.DoesNotMatch(@"\$\$?\{?[A-Z_]*PASS", command);
        }
        var sqlServerProbe = string.Join(' ', Sequence((YamlMappingNode)((YamlMappingNode)services["sqlserver"])["healthcheck"], "test"));
        Assert.Contains("SQLCMDPASSWORD=", sqlServerProbe, StringComparison.Ordinal);
    }

    /// <summary>
    /// Compose runs the image <c>dotnet publish /t:PublishContainer</c> makes: the project's ContainerRepository under
    /// the registry ENVIO_REGISTRY names (its <c>-p:ContainerRegistry</c>), never pulled.
    /// </summary>
    [Fact]
    public void Envios_own_images_are_the_ones_the_build_names_from_the_required_registry_and_are_never_pulled()
    {
        var services = ComposeServices();
        foreach (var (service, project) in new[] { ("api", "Envio.ApiService"), ("consumer", "Envio.ConsumerService") })
        {
            var node = (YamlMappingNode)services[service];
            var repository = System.Xml.Linq.XDocument.Load(Path.Combine(Repository.Root, project, project + ".csproj"))
                .Descendants("ContainerRepository").SingleOrDefault()?.Value;
            Assert.True(repository is not null, $"{project}.csproj names no ContainerRepository: its image would be called after the assembly.");
            var image = Regex.Match(Scalar(node, "image"), @"^\$\{ENVIO_REGISTRY:\?[^}]+\}/(?<repository>[^:$]+):\$\{ENVIO_VERSION:\?[^}]+\}$");
            Assert.True(image.Success, $"{service}: {Scalar(node, "image")} is not ${{ENVIO_REGISTRY}}/<repository>:${{ENVIO_VERSION}}.");
            Assert.Equal(repository, image.Groups["repository"].Value);
            Assert.Equal("never", Scalar(node, "pull_policy"));
        }
    }

    /// <summary>What goes unquoted into a URI or a connection string is letters and digits, and the secrets script enforces it.</summary>
    [Fact]
    public async Task Values_that_go_unquoted_into_a_connection_string_must_be_letters_and_digits()
    {
        var ct = TestContext.Current.CancellationToken;
        var template = File.ReadAllText(Path.Combine(ComposeDirectory, ".env.template"));
        Assert.Matches(@"\[messaging-username\][^\n]*\n?[^\n]*letters and digits only", template);

        var directory = Directory.CreateTempSubdirectory("envio-secrets-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(directory, "enviodb-password"), "semi;colon", ct);
            var (exitCode, output) = await Repository.RunAsync("bash", [Path.Combine(ComposeDirectory, "make-secrets.sh"), directory], ct);
            Assert.NotEqual(0, exitCode);
            Assert.Contains("letters and digits", output, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(directory, "enviodb-connection")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// The consumer writes as its runtime login (select and insert) and migrates as its own login, which owns enviodb
    /// and nothing else; <c>sa</c>'s password reaches only SQL Server and the bootstrap step that creates both logins,
    /// with the AppHost's own statement.
    /// </summary>
    [Fact]
    public void Only_sql_server_and_its_bootstrap_see_sa_and_the_consumer_logs_in_as_its_own_login()
    {
        var services = ComposeServices();
        using var secrets = GeneratedSecrets.Create();
        var writer = new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(ComposeValue(services, "consumer", "ConnectionStrings__enviodb", secrets));
        var consumer = new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(ComposeValue(services, "consumer", "ConnectionStrings__enviodb-migrations", secrets));
        Assert.Equal(SqlServerLogins.WriterLogin, writer.UserID);
        Assert.Equal(SqlServerLogins.ConsumerLogin, consumer.UserID);
        Assert.NotEqual("sa", consumer.UserID, StringComparer.OrdinalIgnoreCase);

        // The monitor's login is made the same way (sqlserver/monitor-login.sql), by a step of its own.
        foreach (var service in services.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).Except(["sqlserver", "sqlserver-bootstrap", "sqlserver-monitor-login"]))
        {
            Assert.DoesNotContain("sqlserver-password", Sequence((YamlMappingNode)services[service], "secrets"));
            foreach (var (key, _) in Environment(services, service))
            {
                Assert.DoesNotMatch(@"(User ID|UID|User)=sa(;|$)", ComposeValue(services, service, key.EndsWith("_FILE", StringComparison.Ordinal) ? key[..^5] : key, secrets));
            }
        }

        var bootstrap = Environment(services, "sqlserver-bootstrap");
        Assert.Equal(consumer.InitialCatalog, bootstrap["ENVIO_DB_NAME"]);
        Assert.Equal(consumer.UserID, bootstrap["ENVIO_DB_LOGIN"]);
        Assert.Equal("<enviodb-password>", ComposeValue(services, "sqlserver-bootstrap", "ENVIO_DB_PASSWORD", secrets));
        Assert.Equal(writer.UserID, bootstrap["ENVIO_DB_WRITER_LOGIN"]);
        Assert.Equal("<enviodb-writer-password>", ComposeValue(services, "sqlserver-bootstrap", "ENVIO_DB_WRITER_PASSWORD", secrets));
        var consumerNode = (YamlMappingNode)services["consumer"];
        Assert.Equal("service_completed_successfully",
            Scalar((YamlMappingNode)((YamlMappingNode)consumerNode["depends_on"])["sqlserver-bootstrap"], "condition"));

        // The script is the AppHost's statement after sqlcmd's variables.
        var script = File.ReadAllText(Path.Combine(ComposeDirectory, "sqlserver", "bootstrap.sql")).ReplaceLineEndings("\n");
        var body = script[(script.IndexOf("\nDECLARE @database", StringComparison.Ordinal) + 1)..];
        var declarations = body[..(body.IndexOf('\n') + 1)];
        Assert.Equal("DECLARE @database sysname = N'$(ENVIO_DB_NAME)', @login sysname = N'$(ENVIO_DB_LOGIN)', @password nvarchar(128) = N'$(ENVIO_DB_PASSWORD)', " +
            "@writerLogin sysname = N'$(ENVIO_DB_WRITER_LOGIN)', @writerPassword nvarchar(128) = N'$(ENVIO_DB_WRITER_PASSWORD)';\n", declarations);
        Assert.Equal(SqlServerLogins.CreateLoginOwningDatabase.ReplaceLineEndings("\n").Trim(), body[declarations.Length..].Trim());
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
        using var secrets = GeneratedSecrets.Create();
        var connectionString = ComposeValue(services, "consumer", "ConnectionStrings__enviodb", secrets)!;

        Assert.Equal(StoreEngine.SqlServer, StoreRegistration.DetectEngine("enviodb", connectionString));
        var database = new Microsoft.Data.SqlClient.SqlConnectionStringBuilder(connectionString);
        Assert.Equal("sqlserver,1433", database.DataSource);
        Assert.True(services.Children.ContainsKey("sqlserver"), "compose has no sqlserver service");
        Assert.Equal("enviodb", database.InitialCatalog);
        Assert.Equal(Microsoft.Data.SqlClient.SqlConnectionEncryptOption.Mandatory, database.Encrypt);
        var mounts = ((YamlSequenceNode)consumer["volumes"]).Children.Select(v => ((YamlScalarNode)v).Value!.Split(':')[1]);
        Assert.Contains(database.ServerCertificate, mounts);
        Assert.False(environment.TryGetValue("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", out var invariant) && invariant is "1" or "true",
            "compose runs the consumer in globalization-invariant mode: SqlClient cannot connect in it.");
        Assert.Equal("service_healthy", Scalar((YamlMappingNode)((YamlMappingNode)consumer["depends_on"])["sqlserver"], "condition"));
    }

    [Fact]
    public void The_brokers_definitions_give_each_role_the_permissions_of_every_type_and_nothing_outside_envio()
    {
        var configuration = File.ReadAllLines(Path.Combine(ComposeDirectory, "rabbitmq", "rabbitmq.conf"));
        Assert.Contains($"load_definitions = {RabbitMQDeploymentResource.DefinitionsPath}", configuration);
        Assert.Contains("loopback_users = none", configuration);
        Assert.Contains("listeners.tcp = none", configuration);
        Assert.DoesNotContain(configuration, line => line.StartsWith("default_user", StringComparison.Ordinal));

        using var secrets = GeneratedSecrets.Create();
        using var definitions = JsonDocument.Parse(secrets.Read("messaging-definitions.json", new HashSet<string>()));
        var users = definitions.RootElement.GetProperty("users").EnumerateArray().Select(u => u.GetProperty("name").GetString()).ToList();
        Assert.Equal(["<messaging-username>", "envio-api", "envio-consumer"], users);
        var permissions = definitions.RootElement.GetProperty("permissions").EnumerateArray().ToDictionary(
            p => p.GetProperty("user").GetString()!,
            p => new Permissions(p.GetProperty("configure").GetString()!, p.GetProperty("write").GetString()!, p.GetProperty("read").GetString()!));
        Assert.Equal(BrokerPermissions.Of(BrokerRole.Administrator, BrokerPermissions.AnyType), permissions["<messaging-username>"]);
        Assert.Equal(BrokerPermissions.Of(BrokerRole.Api, BrokerPermissions.AnyType), permissions["envio-api"]);
        Assert.Equal(BrokerPermissions.Of(BrokerRole.Consumer, BrokerPermissions.AnyType), permissions["envio-consumer"]);
        Assert.All(definitions.RootElement.GetProperty("permissions").EnumerateArray(), p => Assert.Equal(BrokerPermissions.VirtualHost, p.GetProperty("vhost").GetString()));

        // Every work queue's backlog is bounded, and a publish beyond it refused (the client gets 503), never dropped.
        var policy = Assert.Single(definitions.RootElement.GetProperty("policies").EnumerateArray());
        Assert.Equal("queues", policy.GetProperty("apply-to").GetString());
        Assert.Equal("reject-publish", policy.GetProperty("definition").GetProperty("overflow").GetString());
        Assert.True(policy.GetProperty("definition").GetProperty("max-length").GetInt64() > 0);
        var workQueues = new Regex(policy.GetProperty("pattern").GetString()!);

        var allowed = new Regex(BrokerPermissions.DeployedResources);
        foreach (var names in DataObjectTypes.Registered.Select(new TopologyOptions().NamesOf))
        {
            foreach (var name in names.AllQueues.Concat([names.Exchange, names.ErrorExchange, names.RetryExchange]))
            {
                Assert.Matches(allowed, name);
            }
            Assert.Matches(workQueues, names.Queue);
            Assert.DoesNotMatch(workQueues, names.ErrorQueue);
            Assert.All(names.RetryQueues, retry => Assert.DoesNotMatch(workQueues, retry));
            Assert.Matches(BrokerPermissions.Of(BrokerRole.Api, BrokerPermissions.AnyType).Write, names.Exchange);
            Assert.DoesNotMatch(BrokerPermissions.Of(BrokerRole.Api, BrokerPermissions.AnyType).Write, names.ErrorExchange);
        }
        foreach (var foreign in new[] { "amq.gen-x", "amq.default", "", "orders", "envio", "envio.", "other.orders", "envio.Orders" })
        {
            Assert.DoesNotMatch(allowed, foreign);
        }
    }

    /// <summary>
    /// Erlang distribution, guarded only by the cookie, stays on the broker container's loopback when there is one
    /// node (the api and consumer containers share its network); the cluster override opens it for the other nodes
    /// only (<see cref="The_three_nodes_speak_erlang_distribution_on_a_network_the_services_do_not_join"/>).
    /// </summary>
    [Fact]
    public void A_single_broker_keeps_erlang_distribution_on_loopback_and_only_the_cluster_opens_it()
    {
        Assert.Contains("distribution.listener.interface = 127.0.0.1", File.ReadAllLines(Path.Combine(ComposeDirectory, "rabbitmq", "rabbitmq.conf")));
        Assert.Equal("127.0.0.1", Environment(ComposeServices(), "messaging")["ERL_EPMD_ADDRESS"]);
        Assert.DoesNotContain(File.ReadAllLines(Path.Combine(ComposeDirectory, "rabbitmq", "cluster.conf")),
            line => line.StartsWith("distribution.listener.interface", StringComparison.Ordinal));
    }

    /// <summary>
    /// With three nodes, distribution (25672) and epmd (4369) must listen beyond loopback, but only where the other nodes
    /// are: a network of the brokers alone, internal, on which each node is named, binds distribution (its own conf.d file,
    /// loaded after rabbitmq.conf's loopback) and epmd (ERL_EPMD_ADDRESS) to its fixed address. The api and consumers are
    /// not on it and reach the nodes on the default network, where only AMQPS (and the metrics) listen.
    /// </summary>
    [Fact]
    public async Task The_three_nodes_speak_erlang_distribution_on_a_network_the_services_do_not_join()
    {
        var ct = TestContext.Current.CancellationToken;
        var root = await RenderedAsync(["docker-compose.yml", "docker-compose.cluster.yml"], profiles: null, ct);
        var services = (YamlMappingNode)root["services"];

        // The brokers' network: internal, its subnet fixed (the nodes bind to addresses in it).
        var networks = (YamlMappingNode)root["networks"];
        var brokerNetworks = networks.Children.Keys.Select(k => ((YamlScalarNode)k).Value!).Where(n => n != "default").ToList();
        var cluster = Assert.Single(brokerNetworks);
        var network = (YamlMappingNode)networks[cluster];
        Assert.Equal("true", Scalar(network, "internal"));
        var subnet = System.Net.IPNetwork.Parse(Scalar((YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)network["ipam"])["config"]).Children[0], "subnet"));

        string[] nodes = ["messaging", "messaging-2", "messaging-3"];
        var peers = File.ReadAllLines(Path.Combine(ComposeDirectory, "rabbitmq", "cluster.conf"))
            .Where(l => l.StartsWith("cluster_formation.classic_config.nodes.", StringComparison.Ordinal))
            .Select(l => l[(l.IndexOf('=', StringComparison.Ordinal) + 1)..].Trim()).ToList();
        var addresses = new HashSet<string>();
        foreach (var node in nodes)
        {
            var attached = (YamlMappingNode)((YamlMappingNode)services[node])["networks"];
            Assert.True(attached.Children.ContainsKey("default"), $"{node} is not on the default network: the services could not reach its AMQPS.");
            Assert.True(attached.Children.ContainsKey(cluster), $"{node} is not on the brokers' network '{cluster}'.");
            var onCluster = (YamlMappingNode)attached[cluster];
            var address = Scalar(onCluster, "ipv4_address");
            Assert.True(subnet.Contains(System.Net.IPAddress.Parse(address)), $"{node}: {address} is outside {subnet}.");
            Assert.True(addresses.Add(address), $"{node} shares its address {address}.");

            // Named after an alias of the brokers' network only, which the peer list names: the nodes find each other there.
            var environment = Environment(services, node);
            var host = environment["RABBITMQ_NODENAME"].Split('@', 2)[1];
            Assert.Contains(host, Sequence(onCluster, "aliases"));
            Assert.Contains(environment["RABBITMQ_NODENAME"], peers);
            Assert.NotEqual(node, host); // the service name resolves on the default network too

            // Distribution and epmd on that address: the node's own file is the last of conf.d to set the interface.
            Assert.Equal(address, environment["ERL_EPMD_ADDRESS"]);
            var settings = Sequence((YamlMappingNode)services[node], "volumes")
                .Select(m => m.Split(':'))
                .Where(m => m[1].StartsWith("/etc/rabbitmq/conf.d/", StringComparison.Ordinal))
                .OrderBy(m => m[1], StringComparer.Ordinal)
                .SelectMany(m => File.ReadAllLines(Path.Combine(ComposeDirectory, "rabbitmq", Path.GetFileName(m[0]))))
                .Where(l => l.StartsWith("distribution.listener.interface", StringComparison.Ordinal))
                .ToList();
            Assert.True(settings.Count > 0 && settings[^1] == $"distribution.listener.interface = {address}",
                $"{node}: Erlang distribution is bound to '{settings.LastOrDefault()}', not to its address {address} on '{cluster}'.");
        }
        Assert.Equal(nodes.Length, peers.Count);

        // No other service joins the brokers' network, so none reaches 25672 or 4369; they keep the default one.
        foreach (var (service, definition) in services.Children.Select(c => (((YamlScalarNode)c.Key).Value!, (YamlMappingNode)c.Value)).Where(s => !nodes.Contains(s.Item1)))
        {
            var attached = definition.Children.TryGetValue("networks", out var n) ? ((YamlMappingNode)n).Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToList() : ["default"];
            Assert.DoesNotContain(cluster, attached);
            Assert.Contains("default", attached);
        }
        // What they do reach there: AMQPS, on every interface of each node.
        Assert.Contains("listeners.ssl.default = 5671", File.ReadAllLines(Path.Combine(ComposeDirectory, "rabbitmq", "rabbitmq.conf")));
    }

    [Fact]
    public async Task Compose_accepts_the_file_filled_from_the_template()
    {
        var ct = TestContext.Current.CancellationToken;
        var filled = await FilledEnvironmentFileAsync(ct);
        try
        {
            var (exitCode, output) = await ComposeConfigAsync(filled, ["docker-compose.yml"], ["-q"], ct);
            Assert.True(exitCode == 0, $"compose refuses docker-compose.yml:\n{output}");

            // And without the secrets, it refuses with a message naming the missing one.
            (exitCode, output) = await ComposeConfigAsync(Path.Combine(ComposeDirectory, ".env.template"), ["docker-compose.yml"], ["-q"], ct);
            Assert.NotEqual(0, exitCode);
            Assert.Contains("in .env", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(filled);
        }
    }

    /// <summary>
    /// The three-node broker (docker-compose.cluster.yml over docker-compose.yml): compose accepts the pair; each node
    /// runs the same image with the same TLS configuration, permissions, certificates, peer list and Erlang cookie, on a
    /// volume of its own; and both services get every node in one connection string and the same quorum group size.
    /// </summary>
    [Fact]
    public async Task The_three_node_broker_variant_is_accepted_by_compose_with_the_same_tls_and_permissions_on_every_node()
    {
        var ct = TestContext.Current.CancellationToken;
        var services = (YamlMappingNode)(await RenderedAsync(["docker-compose.yml", "docker-compose.cluster.yml"], profiles: null, ct))["services"];
        string[] nodes = ["messaging", "messaging-2", "messaging-3"];
        var peers = File.ReadAllLines(Path.Combine(ComposeDirectory, "rabbitmq", "cluster.conf"));
        foreach (var node in nodes)
        {
            var service = (YamlMappingNode)services[node];
            Assert.Equal(Scalar((YamlMappingNode)services["messaging"], "image"), Scalar(service, "image"));
            Assert.Equal(node, Scalar(service, "hostname"));
            Assert.Contains(peers, line => line.StartsWith("cluster_formation.classic_config.nodes.", StringComparison.Ordinal)
                && line.EndsWith($"= {Environment(services, node)["RABBITMQ_NODENAME"]}", StringComparison.Ordinal));
            var mounts = ((YamlSequenceNode)service["volumes"]).Children.Select(v => ((YamlScalarNode)v).Value!).ToList();
            foreach (var (file, target) in new[] { ("rabbitmq.conf", "/etc/rabbitmq/conf.d/20-envio.conf"), ("cluster.conf", "/etc/rabbitmq/conf.d/30-envio-cluster.conf"),
                ("erlang.cookie", "/var/lib/rabbitmq/.erlang.cookie"), ("certs", "/etc/envio/tls") })
            {
                Assert.True(mounts.Any(m => m.Split(':') is [var from, var to, ..] && Path.GetFileName(from) == file && to == target),
                    $"'{node}' does not mount {file} at {target}.");
            }
            Assert.Contains(mounts, m => m.StartsWith($"envio-{node}-data:/var/lib/rabbitmq", StringComparison.Ordinal));
        }
        using var secrets = GeneratedSecrets.Create();
        var clusterUri = secrets.Read("messaging-cluster-uri", new HashSet<string>());
        Assert.Equal(nodes.Select(n => (n, 5671)), BrokerConnectionStringNodes(clusterUri));
        Assert.StartsWith("amqps://", clusterUri);
        Assert.EndsWith("/" + BrokerPermissions.VirtualHost, clusterUri);
        foreach (var node in nodes)
        {
            Assert.Contains(Sequence((YamlMappingNode)services[node], "volumes"),
                m => m.EndsWith($"messaging-definitions.json:{RabbitMQDeploymentResource.DefinitionsPath}:ro", StringComparison.Ordinal));
        }
        foreach (var (service, uri) in new[] { ("api", "messaging-cluster-api-uri"), ("consumer", "messaging-cluster-consumer-uri") })
        {
            var environment = Environment(services, service);
            Assert.Equal($"/run/secrets/{uri}", environment["ConnectionStrings__messaging_FILE"]);
            Assert.Equal(nodes.Select(n => (n, 5671)), BrokerConnectionStringNodes(secrets.Read(uri, new HashSet<string>())));
            // `config` writes each secret as a mapping with its source.
            Assert.Contains(((YamlSequenceNode)((YamlMappingNode)services[service])["secrets"]).Children,
                secret => secret is YamlMappingNode mapping && Scalar(mapping, "source") == uri);
            Assert.DoesNotContain(environment.Keys, key => key == "ConnectionStrings__messaging");
            Assert.Equal("3", environment["Envio__Topology__QuorumInitialGroupSize"]);
        }
    }

    /// <summary>
    /// The "grafana" profile as compose resolves it: its provisioning files and the dashboards' folder exist where compose
    /// mounts them from, at the places Grafana reads (the dashboards' content: ObservabilityTests).
    /// </summary>
    [Fact]
    public async Task Compose_mounts_grafanas_provisioning_and_dashboards_from_files_that_exist()
    {
        var ct = TestContext.Current.CancellationToken;
        var grafana = (YamlMappingNode)((YamlMappingNode)(await RenderedAsync(["docker-compose.yml"], "sqlserver,observability,grafana", ct))["services"])["grafana"];
        var mounts = Sequence(grafana, "volumes").Select(m => m.Split(':')).Where(m => Path.IsPathRooted(m[0])).ToList();
        foreach (var (target, folder) in new[] { ("/etc/grafana/provisioning/datasources/", false), ("/etc/grafana/provisioning/dashboards/", false), ("/etc/envio/grafana/dashboards", true) })
        {
            var mount = mounts.SingleOrDefault(m => m[1].StartsWith(target, StringComparison.Ordinal));
            Assert.True(mount is not null, $"grafana mounts nothing at {target}.");
            Assert.True(folder ? Directory.Exists(mount[0]) : File.Exists(mount[0]), $"grafana mounts {mount[0]}, which does not exist.");
            Assert.Equal("ro", mount[^1]);
        }
    }

    private static IReadOnlyList<(string, int)> BrokerConnectionStringNodes(string connectionString) =>
        Microsoft.Extensions.Hosting.BrokerConnectionString.Parse(connectionString).Nodes;

    /// <summary>
    /// .env.template with every empty value filled, as ops would write it (a temporary file for the caller to delete).
    /// Skips the test where no compose is installed, as there is nothing to give it to.
    /// </summary>
    private static async Task<string> FilledEnvironmentFileAsync(CancellationToken ct)
    {
        Assert.SkipWhen(ComposeCommand() is null, "Neither docker-compose nor `docker compose` is installed (./test.sh installs docker-compose on Debian).");
        var filled = Path.Combine(Path.GetTempPath(), $"envio-compose-{Guid.NewGuid():N}.env");
        await File.WriteAllLinesAsync(filled,
            File.ReadAllLines(Path.Combine(ComposeDirectory, ".env.template")).Select(line => line.EndsWith('=') ? line + "placeholder" : line), ct);
        return filled;
    }

    /// <summary>
    /// What <c>compose config</c> makes of <paramref name="files"/> with a filled .env (and <paramref name="profiles"/> as
    /// COMPOSE_PROFILES, where given): the whole document, read from after any warning compose prints first.
    /// </summary>
    private static async Task<YamlMappingNode> RenderedAsync(string[] files, string? profiles, CancellationToken ct)
    {
        var filled = await FilledEnvironmentFileAsync(ct);
        try
        {
            if (profiles is not null)
            {
                await File.WriteAllLinesAsync(filled, (await File.ReadAllLinesAsync(filled, ct))
                    .Select(line => line.StartsWith("COMPOSE_PROFILES=", StringComparison.Ordinal) ? $"COMPOSE_PROFILES={profiles}" : line), ct);
            }
            var (exitCode, output) = await ComposeConfigAsync(filled, files, [], ct);
            Assert.True(exitCode == 0, $"compose refuses {string.Join(" with ", files)}{(profiles is null ? "" : $" (profiles {profiles})")}:\n{output}");
            var yaml = new YamlStream();
            yaml.Load(new StringReader(output[Regex.Match(output, "^(networks|secrets|services):", RegexOptions.Multiline).Index..]));
            return (YamlMappingNode)yaml.Documents[0].RootNode;
        }
        finally
        {
            File.Delete(filled);
        }
    }

    /// <summary><c>compose config</c> over <paramref name="files"/> (in the compose folder) with <paramref name="environmentFile"/>.</summary>
    private static Task<(int ExitCode, string Output)> ComposeConfigAsync(string environmentFile, string[] files, string[] options, CancellationToken ct)
    {
        var compose = ComposeCommand()!.Value;
        return Repository.RunAsync(compose.Command,
            [.. compose.Prefix, "--project-directory", ComposeDirectory, .. files.SelectMany(file => new[] { "-f", Path.Combine(ComposeDirectory, file) }),
             "--env-file", environmentFile, "config", .. options], ct);
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

    private const string SecretEnvWrapper = "/etc/envio/secret-env.sh";

    /// <summary>A non-secret input make-secrets.sh reads (MESSAGING_USERNAME), so that it can be told apart in what it writes.</summary>
    private const string UserNameMarker = "MessagingUserNameMarker";

    /// <summary>
    /// A manifest value with its references resolved the way compose names things: <c>{p.value}</c> of a parameter is
    /// <c>&lt;p&gt;</c>, a binding's host is the resource's name (compose's service name), its port the target port (8080,
    /// the SDK images' port, for a project), a connection string is resolved in turn.
    /// </summary>
    private static string ManifestValue(string expression)
    {
        var resources = ManifestResources().ToDictionary(r => r.Name, r => r.Resource);
        return Reference().Replace(expression, match =>
        {
            var parts = match.Groups[1].Value.Split('.');
            var resource = resources[parts[0]];
            return parts switch
            {
                [var parameter, "value"] => $"<{parameter}>",
                [_, "connectionString"] => ManifestValue(resource.GetProperty("connectionString").GetString()!),
                [var name, "bindings", _, "host"] => name,
                [_, "bindings", var binding, "port" or "targetPort"] =>
                    resource.GetProperty("bindings").GetProperty(binding).TryGetProperty("targetPort", out var port) ? port.GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture) : "8080",
                _ => throw new InvalidOperationException($"A manifest reference this test does not know: {match.Value}"),
            };
        });
    }

    /// <summary>
    /// What compose gives <paramref name="service"/> as <paramref name="variable"/>, in the same terms as
    /// <see cref="ManifestValue"/>: <c>${NAME...}</c> of a manifest input is <c>&lt;name&gt;</c>, of another the default; a
    /// <c>NAME_FILE</c> is the content of the secret file make-secrets.sh writes, with the inputs it holds named the same way.
    /// </summary>
    private static string? ComposeValue(YamlMappingNode services, string service, string variable, GeneratedSecrets secrets)
    {
        var environment = Environment(services, service);
        var parameters = ManifestResources().Where(r => r.Resource.GetProperty("type").GetString() == "parameter.v0").Select(r => r.Name).ToHashSet();
        if (environment.TryGetValue(variable, out var value))
        {
            return Placeholders().Replace(value, match =>
            {
                var name = match.Groups["name"].Value.ToLowerInvariant().Replace('_', '-');
                return parameters.Contains(name) ? $"<{name}>" : match.Groups["default"].Value;
            });
        }
        if (environment.TryGetValue(variable + "_FILE", out var path) && path.StartsWith("/run/secrets/", StringComparison.Ordinal))
        {
            var secret = path["/run/secrets/".Length..];
            Assert.True(Sequence((YamlMappingNode)services[service], "secrets").Contains(secret), $"{service} does not mount the secret {secret}.");
            Assert.Equal($"./secrets/{secret}", ComposeSecrets()[secret]);
            return secrets.Read(secret, parameters);
        }
        return null;
    }

    /// <summary>make-secrets.sh run into a temporary folder: what compose mounts at /run/secrets/.</summary>
    private sealed class GeneratedSecrets : IDisposable
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("envio-secrets-").FullName;

        public static GeneratedSecrets Create()
        {
            var secrets = new GeneratedSecrets();
            var start = new System.Diagnostics.ProcessStartInfo("bash", [Path.Combine(ComposeDirectory, "make-secrets.sh"), secrets._directory])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.Environment["MESSAGING_USERNAME"] = UserNameMarker;
            using var process = System.Diagnostics.Process.Start(start)!;
            var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"make-secrets.sh failed:\n{output}");
            return secrets;
        }

        /// <summary>The secret's content, each input's value in it written <c>&lt;name&gt;</c>.</summary>
        public string Read(string secret, IReadOnlySet<string> parameters)
        {
            var content = File.ReadAllText(Path.Combine(_directory, secret)).TrimEnd('\n');
            content = content.Replace(UserNameMarker, "<messaging-username>", StringComparison.Ordinal);
            foreach (var file in Directory.GetFiles(_directory).Where(f => parameters.Contains(Path.GetFileName(f))))
            {
                content = content.Replace(File.ReadAllText(file).TrimEnd('\n'), $"<{Path.GetFileName(file)}>", StringComparison.Ordinal);
            }
            return content;
        }

        public void Dispose() => Directory.Delete(_directory, recursive: true);
    }

    private static bool IsSecret(JsonElement parameter) =>
        parameter.GetProperty("inputs").GetProperty("value").TryGetProperty("secret", out var secret) && secret.GetBoolean();

    private static Dictionary<string, string> ComposeSecrets()
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Path.Combine(ComposeDirectory, "docker-compose.yml"));
        yaml.Load(reader);
        return ((YamlMappingNode)((YamlMappingNode)yaml.Documents[0].RootNode)["secrets"]).Children
            .ToDictionary(s => ((YamlScalarNode)s.Key).Value!, s => Scalar((YamlMappingNode)s.Value, "file"));
    }

    /// <summary>A key that holds a list (or one string), as a list; none when the key is absent.</summary>
    private static IEnumerable<string> Sequence(YamlMappingNode node, string key) =>
        !node.Children.TryGetValue(key, out var value) ? []
        : value is YamlSequenceNode sequence ? sequence.Children.Select(c => ((YamlScalarNode)c).Value!)
        : [((YamlScalarNode)value).Value!];

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
        ((YamlMappingNode)services[service]).Children.TryGetValue("environment", out var environment)
            ? ((YamlMappingNode)environment).Children.ToDictionary(e => ((YamlScalarNode)e.Key).Value!, e => ((YamlScalarNode)e.Value).Value ?? "")
            : [];

    private static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node[key]).Value!;

    /// <summary>Compose's <c>${NAME}</c>, <c>${NAME:-default}</c> and <c>${NAME:?message}</c> substitutions.</summary>
    [GeneratedRegex(@"\$\{(?<name>[A-Za-z0-9_]+)(?::-(?<default>[^}]*)|:\?[^}]*)?\}")]
    private static partial Regex Placeholders();

    /// <summary>The manifest's <c>{resource.property...}</c> references.</summary>
    [GeneratedRegex(@"\{([a-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\}")]
    private static partial Regex Reference();

    [GeneratedRegex("PASSWORD|PASS$|Keys__|Password", RegexOptions.IgnoreCase)]
    private static partial Regex SecretLike();
}
