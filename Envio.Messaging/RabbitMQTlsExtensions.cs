using System.Net.Security;
using Microsoft.Extensions.Configuration;
using RabbitMQ.Client;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// RabbitMQ over TLS (an <c>amqps://</c> connection string). With <c>Envio:Tls:CaCertificate</c> (the path of a PEM
/// file) the broker's certificate must chain to that authority and only to it, and name the host connected to;
/// without it the machine's trust store decides, and the certificate must still name the host connected to.
/// Outside Development a plaintext <c>amqp://</c> connection string stops the service at start.
/// </summary>
public static class RabbitMQTlsExtensions
{
    public const string CaCertificateKey = "Envio:Tls:CaCertificate";

    /// <summary>Where Aspire reads <see cref="ConnectionFactory"/> settings from (for example NetworkRecoveryInterval).</summary>
    private const string ConnectionFactorySection = "Aspire:RabbitMQ:Client:ConnectionFactory";

    /// <summary>
    /// <c>AddRabbitMQClient</c> (Aspire) with the broker's certificate checked as described above, for one node or a
    /// cluster (see <see cref="BrokerConnectionString"/>): every connection made from the registered factory, the
    /// shared <see cref="IConnection"/> and its recoveries included, chooses among all the nodes listed. The broker's
    /// health check (<c>RabbitMQ.Client</c>) is Aspire's registration of AspNetCore.HealthChecks.Rabbitmq on that shared
    /// connection: a channel opened per check (Envio.Tests/Messaging/BrokerHealthCheckTests.cs).
    /// </summary>
    public static void AddRabbitMQClientOverTls(this IHostApplicationBuilder builder, string connectionName) =>
        builder.AddRabbitMQClientOverTls(connectionName, keyed: false);

    /// <summary>
    /// The broker's administrator identity (<c>ConnectionStrings:{connectionName}-admin</c>), when one is given: a keyed
    /// <see cref="IConnectionFactory"/> (key <c>{connectionName}-admin</c>) with the same checks, and no health check of
    /// its own (its connection opens at the first operator's call). Without it, operators' calls use the service's own user.
    /// </summary>
    public static void AddRabbitMQAdminClientOverTls(this IHostApplicationBuilder builder, string connectionName)
    {
        if (builder.Configuration.GetConnectionString(AdminConnectionName(connectionName)) is { Length: > 0 })
        {
            builder.AddRabbitMQClientOverTls(AdminConnectionName(connectionName), keyed: true);
        }
    }

    /// <summary>The name (and service key) of the administrator's connection string to the broker <paramref name="connectionName"/>.</summary>
    public static string AdminConnectionName(string connectionName) => connectionName + "-admin";

    private static void AddRabbitMQClientOverTls(this IHostApplicationBuilder builder, string connectionName, bool keyed)
    {
        // At start, not at the first connection.
        if (builder.Configuration.GetConnectionString(connectionName) is { Length: > 0 } configured
            && BrokerConnectionString.Parse(configured).FirstNode.Scheme == "amqp")
        {
            RefusePlainTextOutsideDevelopment(builder.Environment, connectionName);
        }

        BrokerConnectionString? broker = null;
        Action<Aspire.RabbitMQ.Client.RabbitMQClientSettings> configureSettings = settings =>
            {
                settings.DisableHealthChecks |= keyed;
                // Aspire reads the connection string as one URI: give it the first node's, keep the list here.
                if (settings.ConnectionString is { Length: > 0 } connectionString)
                {
                    broker = BrokerConnectionString.Parse(connectionString);
                    settings.ConnectionString = broker.FirstNode.ToString();
                }
            };
        Action<ConnectionFactory> configureConnectionFactory = factory =>
            {
                broker?.ConfigureFactory(factory);
                // The client waits this long before each recovery attempt (5 s by default). With other nodes up there
                // is nothing to wait for: a service whose node is lost is back on another within about a second.
                if (broker is { Nodes.Count: > 1 } && builder.Configuration[$"{ConnectionFactorySection}:NetworkRecoveryInterval"] is null)
                {
                    factory.NetworkRecoveryInterval = TimeSpan.FromSeconds(1);
                }
                if (!factory.Ssl.Enabled)
                {
                    RefusePlainTextOutsideDevelopment(builder.Environment, connectionName);
                }
                else if (builder.Configuration[CaCertificateKey] is { Length: > 0 } authority)
                {
                    factory.TrustOnly(authority);
                }
                else
                {
                    factory.TrustMachineStoreForThisHostOnly();
                }
            };
        if (keyed)
        {
            builder.AddKeyedRabbitMQClient(connectionName, configureSettings, configureConnectionFactory);
        }
        else
        {
            builder.AddRabbitMQClient(connectionName, configureSettings, configureConnectionFactory);
        }
    }

    private static void RefusePlainTextOutsideDevelopment(IHostEnvironment environment, string connectionName)
    {
        if (!environment.IsDevelopment())
        {
            throw new InvalidOperationException(
                $"The broker connection '{connectionName}' is amqp:// (plain text) in the '{environment.EnvironmentName}' environment: " +
                "use amqps://. Plain AMQP is accepted in Development only.");
        }
    }

    /// <summary>Accepts only a broker certificate issued by the authority in <paramref name="caCertificatePath"/>.</summary>
    public static ConnectionFactory TrustOnly(this ConnectionFactory factory, string caCertificatePath)
    {
        if (!factory.Ssl.Enabled)
        {
            throw new InvalidOperationException(
                $"{CaCertificateKey} is set but the broker's connection string is not amqps://: refusing to connect in plain text.");
        }
        factory.Ssl.CertificateValidationCallback = CertificateAuthorityTrust.Only(CertificateAuthorityTrust.Load(caCertificatePath));
        return factory;
    }

    /// <summary>
    /// Accepts a broker certificate only when the platform finds no fault with it: trusted by the machine's store and
    /// issued for the host connected to. The client's own check would let a name mismatch through (an amqps:// URI
    /// sets <c>AcceptablePolicyErrors = RemoteCertificateNameMismatch</c>): any publicly trusted certificate, for any
    /// host, would do.
    /// </summary>
    public static ConnectionFactory TrustMachineStoreForThisHostOnly(this ConnectionFactory factory)
    {
        factory.Ssl.AcceptablePolicyErrors = SslPolicyErrors.None;
        factory.Ssl.CertificateValidationCallback = (_, certificate, _, errors) => certificate is not null && errors == SslPolicyErrors.None;
        return factory;
    }
}
