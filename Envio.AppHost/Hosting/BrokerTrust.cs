namespace Envio.AppHost.Hosting;

internal static class BrokerTrust
{
    /// <summary>The configuration key (<c>Envio:Tls:CaCertificate</c>) the services read the broker's authority from.</summary>
    public const string CaCertificateVariable = "Envio__Tls__CaCertificate";

    /// <summary>
    /// When the AppHost runs the broker itself (processes mode), tells the service which authority, and only which,
    /// to trust for it: the path of the run's CA certificate. Containers and existing brokers present certificates
    /// that ops supply, trusted through the machine's store (or the same key, set by ops).
    /// </summary>
    public static IResourceBuilder<T> WithBrokerTrust<T>(this IResourceBuilder<T> builder, IResourceBuilder<IResourceWithConnectionString> broker)
        where T : IResourceWithEnvironment =>
        broker.Resource is RabbitMQProcessResource
            ? builder.WithEnvironment(CaCertificateVariable, DevelopmentCertificates.For(builder.ApplicationBuilder).CaCertificatePath)
            : builder;
}
