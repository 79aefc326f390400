using System.Globalization;

namespace Envio.AppHost.Hosting;

/// <summary>
/// RabbitMQ from the Debian package, run by the AppHost as a private node on loopback: AMQP over TLS only, one
/// virtual host for Envio, and a user per role allowed only what the role needs (see <see cref="BrokerPermissions"/>).
/// Alone it is the broker; in a <see cref="RabbitMQClusterResource"/> it is one of its nodes.
/// </summary>
public sealed class RabbitMQProcessResource(
    string name, string command, string workingDirectory, ParameterResource userName, ParameterResource password,
    string nodeName, int epmdPort, IReadOnlyList<BrokerUser> serviceUsers)
    : ExecutableResource(name, command, workingDirectory), IBrokerWithUsers
{
    internal const string PrimaryEndpointName = "amqps";

    public EndpointReference PrimaryEndpoint => field ??= new(this, PrimaryEndpointName);

    public ParameterResource UserNameParameter { get; } = userName;

    public ParameterResource PasswordParameter { get; } = password;

    public IReadOnlyList<BrokerUser> ServiceUsers { get; } = serviceUsers;

    /// <summary>The Erlang node name (<c>name-port@localhost</c>), what <c>rabbitmqctl -n</c> and cluster members name.</summary>
    public string NodeName { get; } = nodeName;

    /// <summary>The port of the epmd this node registers with; <c>rabbitmqctl</c> needs it as <c>ERL_EPMD_PORT</c>.</summary>
    public int EpmdPort { get; } = epmdPort;

    /// <summary>The node's <c>HOME</c>, which holds its Erlang cookie (<c>rabbitmqctl</c> needs the same).</summary>
    public string HomeDirectory => WorkingDirectory;

    public ReferenceExpression ConnectionStringExpression => ConnectionString(ReferenceExpression.Create($"{UserNameParameter}"), PasswordParameter);

    public ReferenceExpression ConnectionStringAs(BrokerUser user) => ConnectionString(ReferenceExpression.Create($"{user.UserName}"), user.Password);

    private ReferenceExpression ConnectionString(ReferenceExpression user, ParameterResource password) => ReferenceExpression.Create(
        $"amqps://{user}:{password}@{HostAndPort}/{BrokerPermissions.VirtualHost}");

    /// <summary><c>127.0.0.1:port</c> of the TLS listener.</summary>
    public ReferenceExpression HostAndPort => ReferenceExpression.Create(
        $"{PrimaryEndpoint.Property(EndpointProperty.IPV4Host)}:{PrimaryEndpoint.Property(EndpointProperty.Port)}");
}

internal static class RabbitMQProcessBuilderExtensions
{
    /// <summary>
    /// Adds RabbitMQ as a local process with its own epmd (else rabbitmq-server spawns an <c>epmd -daemon</c> that
    /// outlives the AppHost), a private node name, data directory, Erlang cookie and free ports. Its only listener is
    /// TLS with the run's <see cref="DevelopmentCertificates"/>; there is no <c>guest</c> and no <c>/</c> virtual host.
    /// </summary>
    public static IResourceBuilder<RabbitMQProcessResource> AddRabbitMQProcess(
        this IDistributedApplicationBuilder builder,
        string name,
        IResourceBuilder<ParameterResource> userName,
        IResourceBuilder<ParameterResource> password,
        IReadOnlyList<BrokerUser> serviceUsers)
    {
        var (epmd, epmdPort) = builder.AddEpmd(name);
        return builder.AddRabbitMQNode(name, epmd, epmdPort, userName, password, serviceUsers, clusterConfiguration: []);
    }

    /// <summary>
    /// The Erlang port mapper the node(s) of <paramref name="brokerName"/> register with, on loopback and a free port.
    /// Nodes on one host find each other through it, so the nodes of a cluster share one.
    /// </summary>
    internal static (IResourceBuilder<ExecutableResource> Epmd, int Port) AddEpmd(this IDistributedApplicationBuilder builder, string brokerName)
    {
        var workspace = LocalProcessWorkspace.For(builder);
        var port = LoopbackPorts.Free();
        var epmd = builder.AddExecutable($"{brokerName}-epmd", LocalBinaries.Epmd(builder.Configuration), workspace.RunDirectory,
                "-address", "127.0.0.1", "-port", port.ToString(CultureInfo.InvariantCulture))
            .WithEnvironment(LocalProcessWorkspace.MarkerVariable, workspace.RunDirectory)
            .WithTcpHealthCheck(port)
            .OnBeforeResourceStarted((_, _, _) => { workspace.DirectoryFor(brokerName); return Task.CompletedTask; })
            .ExcludeFromManifest();
        return (epmd, port);
    }

    /// <summary>
    /// One rabbitmq-server node named <paramref name="name"/>, registered with <paramref name="epmd"/>;
    /// <paramref name="clusterConfiguration"/> adds rabbitmq.conf lines (peer discovery) and
    /// <paramref name="erlangCookie"/> the cookie every node of a cluster must share.
    /// </summary>
    internal static IResourceBuilder<RabbitMQProcessResource> AddRabbitMQNode(
        this IDistributedApplicationBuilder builder,
        string name,
        IResourceBuilder<ExecutableResource> epmd,
        int epmdPort,
        IResourceBuilder<ParameterResource> userName,
        IResourceBuilder<ParameterResource> password,
        IReadOnlyList<BrokerUser> serviceUsers,
        string[] clusterConfiguration,
        string? erlangCookie = null)
    {
        var workspace = LocalProcessWorkspace.For(builder);
        var directory = Path.Combine(workspace.RunDirectory, name);
        var (amqpPort, distributionPort) = (LoopbackPorts.Free(), LoopbackPorts.Free());
        var epmdPortText = epmdPort.ToString(CultureInfo.InvariantCulture);
        var certificates = DevelopmentCertificates.For(builder);

        var rabbitmq = new RabbitMQProcessResource(
            name, LocalBinaries.RabbitMQServer(builder.Configuration), directory, userName.Resource, password.Resource,
            NodeName(name, epmdPort), epmdPort, serviceUsers);

        return builder.AddResource(rabbitmq)
            .WithEndpoint(port: amqpPort, targetPort: amqpPort, name: RabbitMQProcessResource.PrimaryEndpointName, isProxied: false)
            .WithEnvironment(LocalProcessWorkspace.MarkerVariable, workspace.RunDirectory)
            .WithEnvironment("HOME", directory) // its own .erlang.cookie
            .WithEnvironment("RABBITMQ_NODENAME", rabbitmq.NodeName)
            // No RABBITMQ_NODE_PORT / RABBITMQ_NODE_IP_ADDRESS: they would open the plaintext listener rabbitmq.conf turns off.
            .WithEnvironment("RABBITMQ_DIST_PORT", distributionPort.ToString(CultureInfo.InvariantCulture))
            .WithEnvironment("ERL_EPMD_ADDRESS", "127.0.0.1")
            .WithEnvironment("ERL_EPMD_PORT", epmdPortText)
            .WithEnvironment("RABBITMQ_MNESIA_BASE", Path.Combine(directory, "mnesia"))
            .WithEnvironment("RABBITMQ_LOG_BASE", Path.Combine(directory, "log"))
            .WithEnvironment("RABBITMQ_LOGS", "-") // to the dashboard
            .WithEnvironment("RABBITMQ_ENABLED_PLUGINS_FILE", Path.Combine(directory, "enabled_plugins"))
            .WithEnvironment("RABBITMQ_CONFIG_FILE", Path.Combine(directory, "rabbitmq.conf"))
            .WithEnvironment("RABBITMQ_ADVANCED_CONFIG_FILE", Path.Combine(directory, "advanced.config"))
            .OnBeforeResourceStarted(async (resource, _, ct) =>
            {
                // Every boot imports the virtual host and the users with their permissions (the administrator and a
                // user per service; no guest, since a node with definitions to load seeds no default user). The files
                // live only as long as the run.
                var administrator = (BrokerRole.Administrator, (await resource.UserNameParameter.GetValueAsync(ct))!, (await resource.PasswordParameter.GetValueAsync(ct))!);
                var services = await Task.WhenAll(serviceUsers.Select(async u => (u.Role, u.UserName, (await u.Password.GetValueAsync(ct))!)));
                var definitions = Path.Combine(directory, "definitions.json");
                workspace.DirectoryFor(name);
                certificates.EnsureWritten();
                await LocalProcessWorkspace.WriteSecretFileAsync(definitions,
                    BrokerPermissions.Definitions([administrator, .. services], BrokerPermissions.RegisteredTypes), ct);
                await File.WriteAllTextAsync(Path.Combine(directory, "enabled_plugins"), "[].", ct);
                await File.WriteAllTextAsync(Path.Combine(directory, "advanced.config"), "[].", ct);
                await LocalProcessWorkspace.WriteSecretFileAsync(Path.Combine(directory, "rabbitmq.conf"), string.Join('\n',
                [
                    .. Configuration(amqpPort, certificates),
                    $"load_definitions = {definitions}",
                    "loopback_users = none", // the list only ever named guest, which is never created
                    .. clusterConfiguration,
                    "log.console = true",
                    "log.console.level = info",
                    "log.file = false",
                ]) + "\n", ct);
                var cookieFile = Path.Combine(directory, ".erlang.cookie");
                if (erlangCookie is not null && !File.Exists(cookieFile)) // a restart finds it in place
                {
                    // Created 0600 (Erlang refuses a cookie others can read).
                    await LocalProcessWorkspace.WriteSecretFileAsync(cookieFile, erlangCookie, ct);
                }
            })
            .WithAmqpHealthCheck(certificates.CaCertificatePath)
            .WaitFor(epmd)
            .ExcludeFromManifest();
    }

    internal static string NodeName(string resourceName, int epmdPort) =>
        resourceName + "-" + epmdPort.ToString(CultureInfo.InvariantCulture) + "@localhost";

    /// <summary>The TLS listener and Erlang distribution on loopback, and no plaintext listener at all.</summary>
    internal static string[] Configuration(int port, DevelopmentCertificates certificates) =>
    [
        "listeners.tcp = none",
        // Erlang distribution (rabbitmqctl, and a local cluster's nodes) on loopback only: its port would otherwise
        // listen on every interface, where the cookie is the only thing between the network and the node.
        "distribution.listener.interface = 127.0.0.1",
        $"listeners.ssl.default = 127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}",
        $"ssl_options.cacertfile = {certificates.CaCertificatePath}",
        $"ssl_options.certfile = {certificates.ServerCertificatePath}",
        $"ssl_options.keyfile = {certificates.ServerKeyPath}",
        "ssl_options.verify = verify_none", // clients authenticate with their user and password, not a certificate
        "ssl_options.fail_if_no_peer_cert = false",
        "ssl_options.versions.1 = tlsv1.3",
        "ssl_options.versions.2 = tlsv1.2",
    ];
}
