using Envio.AppHost.Hosting;
using Envio.Contracts;
using Envio.Messaging;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.AppHost.Operations;

/// <summary>
/// Every type's work queue's and error queue's depths as properties of the <c>messaging</c> resource (named after the
/// queue: <c>envio.orders ready</c>, <c>envio.orders.error waiting</c>), so the dashboard shows whether data objects
/// pile up or fail without opening the broker's UI. Read every few seconds with a passive
/// declare (the broker's own count of ready messages), over the AppHost's own connection.
/// </summary>
internal static class QueueDepths
{
    /// <summary>The property that shows how many messages wait in a type's work queue.</summary>
    public static string WorkQueueProperty(QueueNames names) => $"{names.Queue} ready";

    /// <summary>The property that shows how many messages wait in a type's error queue.</summary>
    public static string ErrorQueueProperty(QueueNames names) => $"{names.ErrorQueue} waiting";

    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    public static IResourceBuilder<IResourceWithConnectionString> WithQueueDepths(this IResourceBuilder<IResourceWithConnectionString> messaging)
    {
        var builder = messaging.ApplicationBuilder;
        if (builder.ExecutionContext.IsPublishMode)
        {
            return messaging;
        }
        // The same names the services declare (the AppHost hands them the Envio:Topology section).
        var topology = builder.Configuration.GetSection(TopologyOptions.SectionName).Get<TopologyOptions>() ?? new TopologyOptions();
        (string Property, string Queue)[] queues = [.. DataObjectTypes.Registered.Select(topology.NamesOf)
            .SelectMany(names => new[] { (WorkQueueProperty(names), names.Queue), (ErrorQueueProperty(names), names.ErrorQueue) })];
        var caCertificate = messaging.Resource is RabbitMQProcessResource ? DevelopmentCertificates.For(builder).CaCertificatePath : null;

        builder.Eventing.Subscribe<ResourceReadyEvent>(messaging.Resource, (@event, cancellationToken) =>
        {
            _ = ShowAsync(messaging.Resource, queues, caCertificate, @event.Services);
            return Task.CompletedTask;
        });
        return messaging;
    }

    private static async Task ShowAsync(
        IResourceWithConnectionString messaging, (string Property, string Queue)[] queues, string? caCertificate, IServiceProvider services)
    {
        var notifications = services.GetRequiredService<ResourceNotificationService>();
        var stopping = services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        using var timer = new PeriodicTimer(Interval);
        IConnection? connection = null;
        try
        {
            do
            {
                try
                {
                    connection ??= await ConnectAsync(messaging, caCertificate, stopping);
                    var depths = new List<ResourcePropertySnapshot>();
                    foreach (var (property, queue) in queues)
                    {
                        // A channel per queue: a passive declare of a queue not declared yet closes its channel.
                        await using var channel = await connection.CreateChannelAsync(cancellationToken: stopping);
                        try
                        {
                            depths.Add(new(property, (await channel.QueueDeclarePassiveAsync(queue, stopping)).MessageCount));
                        }
                        catch (OperationInterruptedException)
                        {
                            // Not declared yet: the services declare the topology when they start.
                        }
                    }
                    await notifications.PublishUpdateAsync(messaging, state => state with
                    {
                        Properties = [.. state.Properties.Where(p => depths.All(d => d.Name != p.Name)), .. depths],
                    });
                }
                catch (Exception exception) when (exception is BrokerUnreachableException or AlreadyClosedException or IOException)
                {
                    // The broker is restarting: try a new connection next time; the last figures stay meanwhile.
                    await DisposeAsync(connection);
                    connection = null;
                }
            }
            while (await NextAsync(timer, stopping));
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            await DisposeAsync(connection);
        }
    }

    private static async Task<IConnection> ConnectAsync(IResourceWithConnectionString messaging, string? caCertificate, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory
        {
            Uri = new Uri((await messaging.ConnectionStringExpression.GetValueAsync(cancellationToken))!),
            AutomaticRecoveryEnabled = false,
            ClientProvidedName = "envio-apphost-queue-depths",
        };
        if (caCertificate is not null)
        {
            factory.TrustOnly(caCertificate);
        }
        return await factory.CreateConnectionAsync(cancellationToken);
    }

    private static async Task DisposeAsync(IConnection? connection)
    {
        if (connection is not null)
        {
            await connection.DisposeAsync();
        }
    }

    private static async Task<bool> NextAsync(PeriodicTimer timer, CancellationToken stopping)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stopping);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
