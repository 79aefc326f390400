namespace Envio.AppHost.Hosting;

internal static class BrokerTrust
{
    /// <summary>The configuration key (<c>Envio:Tls:CaCertificate</c>) the services read the broker's authority from.</summary>
    public const string CaCertificateVariable = "Envio__Tls__CaCertificate";

    /// <summary>
    /// Tells the service which authority, and only which, to trust for the broker: the run's CA when the AppHost runs
    /// the broker itself (processes mode); in a deployment, the CA certificate ops mount into the services at
    /// <c>/etc/envio/tls/ca.crt</c> (deploy/compose does). A local development container and existing brokers are
    /// trusted through the machine's store (or the same key, set by ops).
    /// </summary>
    public static IResourceBuilder<T> WithBrokerTrust<T>(this IResourceBuilder<T> builder, IResourceBuilder<IResourceWithConnectionString> broker)
        where T : IResourceWithEnvironment => broker.Resource switch
        {
            RabbitMQProcessResource or RabbitMQClusterResource => builder.WithEnvironment(CaCertificateVariable, DevelopmentCertificates.For(builder.ApplicationBuilder).CaCertificatePath),
            RabbitMQDeploymentResource => builder.WithEnvironment(CaCertificateVariable, RabbitMQDeploymentResource.CertificateDirectory + "/ca.crt"),
            _ => builder,
        };
}
