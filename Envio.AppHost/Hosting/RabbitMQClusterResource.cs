using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.AppHost.Hosting;

/// <summary>
/// A RabbitMQ cluster of local <see cref="RabbitMQProcessResource"/> nodes (<c>Envio:Messaging:Nodes</c>): RabbitMQ's own
/// clustering, formed at start by classic-config peer discovery, with Envio's quorum queues replicated on every node.
/// Its connection string lists every node (see <c>BrokerConnectionString</c> in Envio.ServiceDefaults): the services
/// connect to any node that answers and recover on another when theirs is lost.
/// </summary>
public sealed class RabbitMQClusterResource(string name, ParameterResource userName, ParameterResource password, IReadOnlyList<BrokerUser> serviceUsers)
    : Resource(name), IBrokerWithUsers, IResourceWithWaitSupport
{
    public const string ResourceType = "RabbitMQCluster";

    public ParameterResource UserNameParameter { get; } = userName;

    public ParameterResource PasswordParameter { get; } = password;

    public IReadOnlyList<BrokerUser> ServiceUsers { get; } = serviceUsers;

    public List<RabbitMQProcessResource> Nodes { get; } = [];

    public ReferenceExpression ConnectionStringExpression => ConnectionString(ReferenceExpression.Create($"{UserNameParameter}"), PasswordParameter);

    public ReferenceExpression ConnectionStringAs(BrokerUser user) => ConnectionString(ReferenceExpression.Create($"{user.UserName}"), user.Password);

    private ReferenceExpression ConnectionString(ReferenceExpression user, ParameterResource password)
    {
        var builder = new ReferenceExpressionBuilder();
        builder.Append($"amqps://{user}:{password}@");
        for (var i = 0; i < Nodes.Count; i++)
        {
            if (i > 0)
            {
                builder.AppendLiteral(",");
            }
            builder.Append($"{Nodes[i].HostAndPort}");
        }
        builder.Append($"/{BrokerPermissions.VirtualHost}");
        return builder.Build();
    }
}

internal static class RabbitMQClusterBuilderExtensions
{
    /// <summary>
    /// Adds <paramref name="nodes"/> RabbitMQ nodes as local processes (<c>name-1</c>…, shown under <c>name</c> in the
    /// dashboard), sharing one epmd and one Erlang cookie, each with its own node name, ports and data directory, all
    /// over TLS with the run's authority. They start one after the other: each node finds the ones already running
    /// (classic-config peer discovery lists them all) and joins them; a node restarted later rejoins from its data.
    /// </summary>
    public static IResourceBuilder<RabbitMQClusterResource> AddRabbitMQCluster(
        this IDistributedApplicationBuilder builder,
        string name,
        int nodes,
        IResourceBuilder<ParameterResource> userName,
        IResourceBuilder<ParameterResource> password,
        IReadOnlyList<BrokerUser> serviceUsers)
    {
        var (epmd, epmdPort) = builder.AddEpmd(name);
        var cookie = RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 32);
        var names = Enumerable.Range(1, nodes).Select(n => $"{name}-{n}").ToList();
        string[] peerDiscovery =
        [
            "cluster_formation.peer_discovery_backend = classic_config",
            .. names.Select((node, i) => $"cluster_formation.classic_config.nodes.{i + 1} = {RabbitMQProcessBuilderExtensions.NodeName(node, epmdPort)}"),
        ];

        var cluster = builder.AddResource(new RabbitMQClusterResource(name, userName.Resource, password.Resource, serviceUsers))
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = RabbitMQClusterResource.ResourceType,
                State = KnownResourceStates.Starting,
                Properties = [new("nodes", nodes)],
            })
            .ExcludeFromManifest();

        IResourceBuilder<RabbitMQProcessResource>? previous = null;
        foreach (var nodeName in names)
        {
            var node = builder.AddRabbitMQNode(nodeName, epmd, epmdPort, userName, password, serviceUsers, peerDiscovery, cookie)
                .WithParentRelationship(cluster);
            if (previous is not null)
            {
                node.AfterOnFirstStart(previous.Resource.Name);
            }
            cluster.Resource.Nodes.Add(node.Resource);
            previous = node;
        }

        // The cluster is up once its last node joined; its own check (AMQP through the node list) then says healthy.
        previous!.OnResourceReady((_, ready, _) => cluster.Resource.MarkRunningAsync(ready.Services));
        return cluster.WithAmqpHealthCheck(DevelopmentCertificates.For(builder).CaCertificatePath);
    }

    /// <summary>
    /// The first start of this node waits until <paramref name="previousNode"/> is healthy: it then joins what runs
    /// already (started all at once, each node could found a cluster of its own). Not WaitFor: that holds every later
    /// start too, and a node must come back while the one before it is down (it rejoins the cluster from its data).
    /// </summary>
    private static void AfterOnFirstStart(this IResourceBuilder<RabbitMQProcessResource> node, string previousNode)
    {
        var started = 0;
        node.OnBeforeResourceStarted(async (_, @event, ct) =>
        {
            if (Interlocked.Exchange(ref started, 1) == 0)
            {
                await @event.Services.GetRequiredService<ResourceNotificationService>().WaitForResourceHealthyAsync(previousNode, ct);
            }
        });
    }
}
