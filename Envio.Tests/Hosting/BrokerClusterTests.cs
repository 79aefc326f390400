using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.AppHost.Hosting;
using Envio.Tests.Support;
using Microsoft.Extensions.Hosting;

namespace Envio.Tests.Hosting;

/// <summary>
/// The broker as a cluster in the AppHost's model (<c>Envio:Messaging:Nodes</c>), and the one connection string format
/// for one node and for many. What the running cluster does is in EndToEnd/ClusterFailoverTests.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class BrokerClusterTests
{
    private static IDistributedApplicationBuilder Builder(params string[] args) =>
        DistributedApplication.CreateBuilder(new DistributedApplicationOptions { Args = args, DisableDashboard = true });

    [Fact]
    public void Three_nodes_are_three_rabbitmq_processes_under_one_messaging_resource_sharing_one_epmd()
    {
        var builder = Builder("--Envio:Hosting=processes", "--Envio:Messaging:Nodes=3");
        var messaging = builder.AddMessaging("messaging", builder.ChooseHosting());

        var cluster = Assert.IsType<RabbitMQClusterResource>(messaging.Resource);
        var nodes = builder.Resources.OfType<RabbitMQProcessResource>().OrderBy(n => n.Name).ToList();
        Assert.Equal(["messaging-1", "messaging-2", "messaging-3"], nodes.Select(n => n.Name));
        Assert.Equal(nodes, cluster.Nodes);
        Assert.Single(builder.Resources.OfType<ExecutableResource>(), r => r.Name.EndsWith("-epmd", StringComparison.Ordinal));
        Assert.Single(nodes.Select(n => n.EpmdPort).Distinct());
        Assert.Equal(3, nodes.Select(n => n.NodeName).Distinct().Count());
        Assert.All(nodes, n => Assert.True(n.TryGetAnnotationsOfType<ResourceRelationshipAnnotation>(out var relations)
            && relations.Any(r => r.Resource == cluster && r.Type == "Parent")));
        // Both services declare every queue with a member on each node.
        Assert.Equal("3", builder.Configuration["Envio:Topology:QuorumInitialGroupSize"]);
    }

    [Fact]
    public void One_node_is_the_single_broker_as_before()
    {
        var builder = Builder("--Envio:Hosting=processes");
        var messaging = builder.AddMessaging("messaging", builder.ChooseHosting());

        Assert.IsType<RabbitMQProcessResource>(messaging.Resource);
        Assert.Null(builder.Configuration["Envio:Topology:QuorumInitialGroupSize"]);
    }

    [Fact]
    public void A_cluster_in_containers_mode_is_a_clear_error()
    {
        var builder = Builder("--Envio:Hosting=containers", "--Envio:Messaging:Nodes=3");
        var error = Assert.Throws<DistributedApplicationException>(() => builder.AddMessaging("messaging", builder.ChooseHosting()));
        Assert.Contains("Envio:Hosting=processes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_connection_string_may_list_several_nodes_with_one_user_and_virtual_host()
    {
        var broker = BrokerConnectionString.Parse("amqps://envio:p%40ss@rabbit-1:5671,rabbit-2:5681, rabbit-3/envio?heartbeat=10");

        Assert.Equal(new Uri("amqps://envio:p%40ss@rabbit-1:5671/envio?heartbeat=10"), broker.FirstNode);
        Assert.Equal([("rabbit-1", 5671), ("rabbit-2", 5681), ("rabbit-3", 5671)], broker.Nodes);

        var factory = broker.ConfigureFactory(new RabbitMQ.Client.ConnectionFactory());
        Assert.Equal(("envio", "p@ss", "envio", true), (factory.UserName, factory.Password, factory.VirtualHost, factory.Ssl.Enabled));
        var endpoints = factory.EndpointResolverFactory([factory.Endpoint]).All().OrderBy(e => e.HostName).ToList();
        Assert.Equal(["rabbit-1:5671", "rabbit-2:5681", "rabbit-3:5671"], endpoints.Select(e => $"{e.HostName}:{e.Port}"));
        // Each node's certificate is checked against that node's own name.
        Assert.All(endpoints, e => Assert.Equal((true, e.HostName), (e.Ssl.Enabled, e.Ssl.ServerName)));
    }

    [Fact]
    public void A_single_node_connection_string_is_a_plain_amqp_uri()
    {
        var broker = BrokerConnectionString.Parse("amqp://u:p@broker.example:5672/");

        Assert.Equal(new Uri("amqp://u:p@broker.example:5672/"), broker.FirstNode);
        Assert.Equal([("broker.example", 5672)], broker.Nodes);
    }
}
