using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using RabbitMQ.Client;

namespace Envio.AppHost.Hosting;

/// <summary>Readiness checks for the backing services started as processes: "WaitFor" means "accepts work".</summary>
internal static class BackingServiceHealthChecks
{
    /// <summary>
    /// The resolved connection string, for health-check factories that take a plain string. Health checks run only
    /// once the resource is running, when every endpoint and parameter in it has its value.
    /// </summary>
    public static string CurrentConnectionString(this IResourceWithConnectionString resource) =>
        resource.ConnectionStringExpression.GetValueAsync(default).AsTask().GetAwaiter().GetResult()
        ?? throw new InvalidOperationException($"The connection string of '{resource.Name}' is not available yet.");

    /// <summary>
    /// Aspire moves the children of containers along with their parent, but not those of executables: a database
    /// on a server process is marked running here, once it exists, so that its health check runs and WaitFor ends.
    /// </summary>
    public static Task MarkRunningAsync(this IResource resource, IServiceProvider services) =>
        services.GetRequiredService<ResourceNotificationService>().PublishUpdateAsync(resource, state => state with
        {
            State = KnownResourceStates.Running,
            StartTimeStamp = DateTime.UtcNow,
        });

    /// <summary>
    /// Healthy once an AMQP connection opens with the resource's own connection string (to any node it lists), over TLS trusting only the
    /// authority in <paramref name="caCertificatePath"/> when the connection string is <c>amqps://</c>.
    /// </summary>
    public static IResourceBuilder<T> WithAmqpHealthCheck<T>(this IResourceBuilder<T> builder, string? caCertificatePath = null)
        where T : IResourceWithConnectionString
    {
        var key = $"{builder.Resource.Name}_amqp_check";
        var resource = builder.Resource;
        builder.ApplicationBuilder.Services.AddHealthChecks().AddAsyncCheck(key, async ct =>
        {
            try
            {
                var uri = await resource.ConnectionStringExpression.GetValueAsync(ct).ConfigureAwait(false);
                var factory = BrokerConnectionString.Parse(uri!).ConfigureFactory(new ConnectionFactory { AutomaticRecoveryEnabled = false });
                if (caCertificatePath is not null)
                {
                    factory.TrustOnly(caCertificatePath);
                }
                else if (factory.Ssl.Enabled)
                {
                    factory.TrustMachineStoreForThisHostOnly();
                }
                await using var connection = await factory.CreateConnectionAsync(ct).ConfigureAwait(false);
                return HealthCheckResult.Healthy();
            }
            catch (Exception e)
            {
                return HealthCheckResult.Unhealthy("AMQP connection failed.", e);
            }
        });
        return builder.WithHealthCheck(key);
    }

    /// <summary>Healthy once something accepts TCP connections on 127.0.0.1:<paramref name="port"/>.</summary>
    public static IResourceBuilder<T> WithTcpHealthCheck<T>(this IResourceBuilder<T> builder, int port)
        where T : IResource
    {
        var key = $"{builder.Resource.Name}_tcp_check";
        builder.ApplicationBuilder.Services.AddHealthChecks().AddAsyncCheck(key, async ct =>
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port, ct).ConfigureAwait(false);
                return HealthCheckResult.Healthy();
            }
            catch (SocketException e)
            {
                return HealthCheckResult.Unhealthy($"Nothing listens on 127.0.0.1:{port}.", e);
            }
        });
        return builder.WithHealthCheck(key);
    }
}
