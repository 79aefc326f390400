using System.Globalization;

namespace Envio.AppHost.Hosting;

/// <summary>
/// RabbitMQ from the Debian package, run by the AppHost as a private node on loopback: AMQP over TLS only, one
/// virtual host for Envio and one user allowed nothing but Envio's exchanges and queues (see <see cref="BrokerPermissions"/>).
/// </summary>
public sealed class RabbitMQProcessResource(
    string name, string command, string workingDirectory, ParameterResource userName, ParameterResource password)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    internal const string PrimaryEndpointName = "amqps";

    public EndpointReference PrimaryEndpoint => field ??= new(this, PrimaryEndpointName);

    public ParameterResource UserNameParameter { get; } = userName;

    public ParameterResource PasswordParameter { get; } = password;

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"amqps://{UserNameParameter}:{PasswordParameter}@{PrimaryEndpoint.Property(EndpointProperty.IPV4Host)}:{PrimaryEndpoint.Property(EndpointProperty.Port)}/{BrokerPermissions.VirtualHost}");
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
        IResourceBuilder<ParameterResource> password)
    {
        var workspace = LocalProcessWorkspace.For(builder);
        var directory = Path.Combine(workspace.RunDirectory, name);
        var (epmdPort, amqpPort, distributionPort) =
            (LocalProcessWorkspace.FreeLoopbackPort(), LocalProcessWorkspace.FreeLoopbackPort(), LocalProcessWorkspace.FreeLoopbackPort());
        var epmdPortText = epmdPort.ToString(CultureInfo.InvariantCulture);
        var certificates = DevelopmentCertificates.For(builder);

        var epmd = builder.AddExecutable($"{name}-epmd", LocalBinaries.Epmd(builder.Configuration), workspace.RunDirectory,
                "-address", "127.0.0.1", "-port", epmdPortText)
            .WithEnvironment(LocalProcessWorkspace.MarkerVariable, workspace.RunDirectory)
            .WithTcpHealthCheck(epmdPort)
            .OnBeforeResourceStarted((_, _, _) => { workspace.DirectoryFor(name); return Task.CompletedTask; })
            .ExcludeFromManifest();

        var rabbitmq = new RabbitMQProcessResource(
            name, LocalBinaries.RabbitMQServer(builder.Configuration), directory, userName.Resource, password.Resource);

        return builder.AddResource(rabbitmq)
            .WithEndpoint(port: amqpPort, targetPort: amqpPort, name: RabbitMQProcessResource.PrimaryEndpointName, isProxied: false)
            .WithEnvironment(LocalProcessWorkspace.MarkerVariable, workspace.RunDirectory)
            .WithEnvironment("HOME", directory) // its own .erlang.cookie
            .WithEnvironment("RABBITMQ_NODENAME", name + "-" + epmdPortText + "@localhost")
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
                // The first boot of an empty node creates the virtual host and this user (and no guest); the file
                // lives only as long as the run.
                var user = await resource.UserNameParameter.GetValueAsync(ct);
                var secret = await resource.PasswordParameter.GetValueAsync(ct);
                workspace.DirectoryFor(name);
                certificates.EnsureWritten();
                await File.WriteAllTextAsync(Path.Combine(directory, "enabled_plugins"), "[].", ct);
                await File.WriteAllTextAsync(Path.Combine(directory, "advanced.config"), "[].", ct);
                await LocalProcessWorkspace.WriteSecretFileAsync(Path.Combine(directory, "rabbitmq.conf"), string.Join('\n',
                [
                    .. Configuration(amqpPort, certificates),
                    .. BrokerPermissions.Configuration(user!, secret!),
                    "log.console = true",
                    "log.console.level = info",
                    "log.file = false",
                ]) + "\n", ct);
            })
            .WithAmqpHealthCheck(certificates.CaCertificatePath)
            .WaitFor(epmd)
            .ExcludeFromManifest();
    }

    /// <summary>The TLS listener on loopback, and no plaintext listener at all.</summary>
    internal static string[] Configuration(int port, DevelopmentCertificates certificates) =>
    [
        "listeners.tcp = none",
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
