using Microsoft.Extensions.Configuration;

namespace Envio.AppHost.Hosting;

/// <summary>
/// The two backing services as one verb each. A connection string given to the AppHost
/// (<c>ConnectionStrings:messaging</c>, <c>ConnectionStrings:enviodb</c>) means an existing server, used as it is.
/// </summary>
internal static class BackingServices
{
    private const string TopologySection = "Envio:Topology";

    public static IResourceBuilder<IResourceWithConnectionString> AddMessaging(
        this IDistributedApplicationBuilder builder, string name, HostingChoice hosting)
    {
        if (builder.Configuration.GetConnectionString(name) is { Length: > 0 })
        {
            return builder.AddConnectionString(name);
        }

        // The administrator (topology, operators' calls), then a user for each service (see BrokerPermissions).
        var userName = builder.AddParameter($"{name}-username", "envio", publishValueAsDefault: true);
        var password = builder.AddBrokerPassword(name);
        BrokerUser[] serviceUsers =
        [
            new(BrokerRole.Api, builder.AddBrokerPassword($"{name}-api").Resource),
            new(BrokerRole.Consumer, builder.AddBrokerPassword($"{name}-consumer").Resource),
        ];

        // Envio:Messaging:Nodes: 1 (a single broker) or more (a RabbitMQ cluster; processes mode).
        var nodes = builder.Configuration.GetValue("Envio:Messaging:Nodes", 1);
        if (nodes > 1)
        {
            if (hosting.Mode != HostingMode.Processes)
            {
                throw new DistributedApplicationException(
                    "Envio:Messaging:Nodes > 1 runs a cluster of local processes (Envio:Hosting=processes); " +
                    "a deployed cluster is described in deploy/compose (docker-compose.cluster.yml).");
            }
            // Every queue gets a member on every node. It reaches both services through Envio:Topology, so both
            // declare the same arguments.
            builder.Configuration[$"{TopologySection}:QuorumInitialGroupSize"] ??= nodes.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return builder.AddRabbitMQCluster(name, nodes, userName, password, serviceUsers);
        }

        return hosting.Mode switch
        {
            // Deployed: TLS only, Envio's virtual host and user (see deploy/compose). A local development container
            // (below) is Aspire's RabbitMQ on the machine's loopback, in plain AMQP.
            HostingMode.Containers when builder.ExecutionContext.IsPublishMode => builder.AddRabbitMQForDeployment(name, userName, password, serviceUsers),
            HostingMode.Containers => builder.AddRabbitMQ(name, userName, password)
                .WithManagementPlugin()
                .WithDataVolume("envio-messaging-data"),
            _ => builder.AddRabbitMQProcess(name, userName, password, serviceUsers),
        };
    }

    /// <summary><c>{prefix}-password</c>: generated once, kept in the AppHost's user secrets (no symbols: it travels inside an amqp:// URI).</summary>
    private static IResourceBuilder<ParameterResource> AddBrokerPassword(this IDistributedApplicationBuilder builder, string prefix) =>
        builder.AddGeneratedPassword($"{prefix}-password");

    public static IResourceBuilder<IResourceWithConnectionString> AddEnvioDatabase(
        this IDistributedApplicationBuilder builder, string name, HostingChoice hosting)
    {
        if (builder.Configuration.GetConnectionString(name) is { Length: > 0 })
        {
            if (builder.Configuration.GetConnectionString(name + DatabaseOwners.Suffix) is { Length: > 0 })
            {
                builder.AddConnectionString(name + DatabaseOwners.Suffix); // the schema's owner, for the migrations
            }
            return builder.AddConnectionString(name);
        }

        return (hosting.Database, hosting.Mode) switch
        {
            (DatabaseEngine.SqlServer, HostingMode.Containers) => builder.AddSqlServer("sqlserver")
                .WithDataVolume("envio-sqlserver-data")
                .AddDatabase(name),
            (DatabaseEngine.Postgres, HostingMode.Containers) => builder.AddPostgres("postgres")
                .WithDataVolume("envio-postgres-data")
                .AddDatabase(name),
            (DatabaseEngine.Postgres, HostingMode.Processes) => builder.AddPostgresProcess("postgres")
                .AddDatabase(name),
            _ => throw new DistributedApplicationException(
                "SQL Server cannot run as a local process. Use Envio:Database=postgres, Envio:Hosting=containers, " +
                $"or give the AppHost an existing server as ConnectionStrings:{name}."),
        };
    }
}
