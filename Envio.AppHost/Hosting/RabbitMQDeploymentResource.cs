namespace Envio.AppHost.Hosting;

/// <summary>
/// RabbitMQ as ops deploy it (the manifest, and deploy/compose/): AMQPS only, on 5671, and the management UI over
/// HTTPS; Envio's virtual host and its users with their permissions, from the definitions deploy/compose/make-secrets.sh
/// writes (loaded as deploy/compose/rabbitmq/rabbitmq.conf says); the certificates ops supply in deploy/compose/certs/.
/// Aspire's RabbitMQ resource would hand out amqp:// to the default virtual host.
/// </summary>
public sealed class RabbitMQDeploymentResource(string name, ParameterResource userName, ParameterResource password, IReadOnlyList<BrokerUser> serviceUsers)
    : ContainerResource(name), IBrokerWithUsers
{
    internal const string PrimaryEndpointName = "amqps";

    /// <summary>A pinned release (deploy/compose uses the same): an upgrade is a choice, made with a backup first.</summary>
    public const string Tag = "4.3.6-management";

    /// <summary>Where the broker's and the services' containers find the certificates (deploy/compose mounts them there).</summary>
    internal const string CertificateDirectory = "/etc/envio/tls";

    public EndpointReference PrimaryEndpoint => field ??= new(this, PrimaryEndpointName);

    public ParameterResource UserNameParameter { get; } = userName;

    public ParameterResource PasswordParameter { get; } = password;

    public IReadOnlyList<BrokerUser> ServiceUsers { get; } = serviceUsers;

    /// <summary>Where the broker finds the definitions (users, permissions) that make-secrets.sh writes.</summary>
    internal const string DefinitionsPath = "/etc/envio/rabbitmq/definitions.json";

    public ReferenceExpression ConnectionStringExpression => ConnectionString(ReferenceExpression.Create($"{UserNameParameter}"), PasswordParameter);

    public ReferenceExpression ConnectionStringAs(BrokerUser user) => ConnectionString(ReferenceExpression.Create($"{user.UserName}"), user.Password);

    private ReferenceExpression ConnectionString(ReferenceExpression user, ParameterResource password) => ReferenceExpression.Create(
        $"amqps://{user}:{password}@{PrimaryEndpoint.Property(EndpointProperty.Host)}:{PrimaryEndpoint.Property(EndpointProperty.Port)}/{BrokerPermissions.VirtualHost}");
}

internal static class RabbitMQDeploymentBuilderExtensions
{
    public static IResourceBuilder<RabbitMQDeploymentResource> AddRabbitMQForDeployment(
        this IDistributedApplicationBuilder builder,
        string name,
        IResourceBuilder<ParameterResource> userName,
        IResourceBuilder<ParameterResource> password,
        IReadOnlyList<BrokerUser> serviceUsers)
    {
        var compose = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..", "deploy", "compose"));
        return builder.AddResource(new RabbitMQDeploymentResource(name, userName.Resource, password.Resource, serviceUsers))
            .WithImage("library/rabbitmq", RabbitMQDeploymentResource.Tag)
            .WithImageRegistry("docker.io")
            .WithEndpoint(targetPort: 5671, name: RabbitMQDeploymentResource.PrimaryEndpointName)
            .WithHttpsEndpoint(targetPort: 15671, name: "management")
            .WithEnvironment("ERL_EPMD_ADDRESS", "127.0.0.1") // with rabbitmq.conf, Erlang distribution on loopback only
            .WithVolume("envio-messaging-data", "/var/lib/rabbitmq")
            .WithBindMount(Path.Combine(compose, "rabbitmq", "rabbitmq.conf"), "/etc/rabbitmq/conf.d/20-envio.conf", isReadOnly: true)
            .WithBindMount(Path.Combine(compose, "certs"), RabbitMQDeploymentResource.CertificateDirectory, isReadOnly: true)
            // Imported at every boot: the virtual host, the administrator and the services' users with their permissions.
            .WithBindMount(Path.Combine(compose, "secrets", "messaging-definitions.json"), RabbitMQDeploymentResource.DefinitionsPath, isReadOnly: true);
    }
}
