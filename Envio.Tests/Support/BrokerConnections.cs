using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.AppHost.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RabbitMQ.Client;

namespace Envio.Tests.Support;

/// <summary>The tests' own connections to a stack's broker: over TLS, trusting the run's authority as the services do.</summary>
public static class BrokerConnections
{
    /// <summary>The run's certificate authority (PEM), which the broker's and the database's certificates chain to.</summary>
    public static string CaCertificatePath(this DistributedApplication app) =>
        app.Services.GetRequiredService<DevelopmentCertificates>().CaCertificatePath;

    /// <summary>A factory for the broker's connection string, one node or every node of a cluster.</summary>
    public static async Task<ConnectionFactory> BrokerFactoryAsync(this DistributedApplication app, CancellationToken cancellationToken) =>
        BrokerConnectionString.Parse((await app.GetConnectionStringAsync("messaging", cancellationToken))!)
            .ConfigureFactory(new ConnectionFactory())
            .TrustOnly(app.CaCertificatePath());

    /// <summary>A factory for the same broker as the user of a service's <paramref name="role"/> (see BrokerPermissions).</summary>
    public static async Task<ConnectionFactory> BrokerFactoryAsync(this DistributedApplication app, BrokerRole role, CancellationToken cancellationToken)
    {
        var broker = app.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<IBrokerWithUsers>().Single();
        var connectionString = await broker.ConnectionStringAs(broker.ServiceUsers.Single(u => u.Role == role)).GetValueAsync(cancellationToken);
        return BrokerConnectionString.Parse(connectionString!).ConfigureFactory(new ConnectionFactory()).TrustOnly(app.CaCertificatePath());
    }

    public static async Task<IConnection> ConnectToBrokerAsync(this DistributedApplication app, CancellationToken cancellationToken) =>
        await (await app.BrokerFactoryAsync(cancellationToken)).CreateConnectionAsync(cancellationToken);
}
