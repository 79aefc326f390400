namespace Envio.AppHost.Hosting;

/// <summary>
/// RabbitMQ as ops deploy it (the manifest, and deploy/compose/): AMQPS only, on 5671, and the management UI over
/// HTTPS; Envio's virtual host and least-privilege user, from deploy/compose/rabbitmq/rabbitmq.conf; the certificates
/// ops supply in deploy/compose/certs/. Aspire's RabbitMQ resource would hand out amqp:// to the default virtual host.
/// </summary>
public sealed class RabbitMQDeploymentResource(string name, ParameterResource userName, ParameterResource password)
    : ContainerResource(name), IResourceWithConnectionString
{
    internal const string PrimaryEndpointName = "amqps";

    /// <summary>Where the broker's and the services' containers find the certificates (deploy/compose mounts them there).</summary>
    internal const string CertificateDirectory = "/etc/envio/tls";

    public EndpointReference PrimaryEndpoint => field ??= new(this, PrimaryEndpointName);

    public ParameterResource UserNameParameter { get; } = userName;

    public ParameterResource PasswordParameter { get; } = password;

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"amqps://{UserNameParameter}:{PasswordParameter}@{PrimaryEndpoint.Property(EndpointProperty.Host)}:{PrimaryEndpoint.Property(EndpointProperty.Port)}/{BrokerPermissions.VirtualHost}");
}

internal static class RabbitMQDeploymentBuilderExtensions
{
    public static IResourceBuilder<RabbitMQDeploymentResource> AddRabbitMQForDeployment(
        this IDistributedApplicationBuilder builder,
        string name,
        IResourceBuilder<ParameterResource> userName,
        IResourceBuilder<ParameterResource> password)
    {
        var compose = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..", "deploy", "compose"));
        return builder.AddResource(new RabbitMQDeploymentResource(name, userName.Resource, password.Resource))
            .WithImage("library/rabbitmq", "4.3-management")
            .WithImageRegistry("docker.io")
            .WithEndpoint(targetPort: 5671, name: RabbitMQDeploymentResource.PrimaryEndpointName)
            .WithHttpsEndpoint(targetPort: 15671, name: "management")
            // Read on the first boot of an empty volume only: the user, in the virtual host the configuration names.
            .WithEnvironment("RABBITMQ_DEFAULT_USER", userName)
            .WithEnvironment("RABBITMQ_DEFAULT_PASS", password)
            .WithVolume("envio-messaging-data", "/var/lib/rabbitmq")
            .WithBindMount(Path.Combine(compose, "rabbitmq", "rabbitmq.conf"), "/etc/rabbitmq/conf.d/20-envio.conf", isReadOnly: true)
            .WithBindMount(Path.Combine(compose, "certs"), RabbitMQDeploymentResource.CertificateDirectory, isReadOnly: true);
    }
}
