using RabbitMQ.Client;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The broker's connection string, one format for one node and for a cluster: an AMQP URI whose host part may list
/// several nodes, comma-separated, e.g. <c>amqps://envio:secret@rabbit-1:5671,rabbit-2:5671,rabbit-3:5671/envio</c>.
/// User, password, virtual host and query apply to every node. A client connects to any node that answers (in
/// random order, RabbitMQ.Client's <see cref="DefaultEndpointResolver"/>) and, when that node is lost, its automatic
/// recovery picks again from the same list.
/// </summary>
public sealed record BrokerConnectionString(Uri FirstNode, IReadOnlyList<(string Host, int Port)> Nodes)
{
    public static BrokerConnectionString Parse(string connectionString)
    {
        var schemeEnd = connectionString.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd <= 0)
        {
            throw new FormatException("The broker's connection string must be an amqp:// or amqps:// URI.");
        }
        var scheme = connectionString[..schemeEnd];
        var rest = connectionString[(schemeEnd + 3)..];
        // A user or password holding '@', '/' or ',' is percent-encoded in a URI, so these split it unambiguously.
        var authorityEnd = rest.IndexOfAny(['/', '?', '#']) is var end and >= 0 ? end : rest.Length;
        var authority = rest[..authorityEnd];
        var hostsStart = authority.LastIndexOf('@') + 1;
        var hosts = authority[hostsStart..].Split(',', StringSplitOptions.TrimEntries);
        if (hosts.Any(string.IsNullOrEmpty))
        {
            throw new FormatException("The broker's connection string names an empty host.");
        }

        var firstNode = new Uri($"{scheme}://{authority[..hostsStart]}{hosts[0]}{rest[authorityEnd..]}");
        var nodes = hosts.Select(host => new Uri($"{scheme}://{host}"))
            .Select(node => (node.IdnHost, node.Port < 0 ? DefaultPort(node.Scheme) : node.Port))
            .ToList();
        return new BrokerConnectionString(firstNode, nodes);

        static int DefaultPort(string scheme) => scheme == "amqps" ? AmqpTcpEndpoint.DefaultAmqpSslPort : 5672;
    }

    /// <summary>
    /// Sets the factory's URI (user, password, virtual host, TLS) from the first node, and makes every connection it
    /// creates, recoveries included, choose among all nodes. Each node's TLS settings are the factory's at connect
    /// time (so a validation callback set later applies), with the node's own host name to check its certificate.
    /// </summary>
    public ConnectionFactory ConfigureFactory(ConnectionFactory factory)
    {
        factory.Uri = FirstNode;
        if (Nodes.Count > 1)
        {
            factory.EndpointResolverFactory = given =>
            {
                var template = given.First();
                return new DefaultEndpointResolver(Nodes.Select(node =>
                    new AmqpTcpEndpoint(node.Host, node.Port, ForHost(template.Ssl, node.Host), template.MaxInboundMessageBodySize)));
            };
        }
        return factory;
    }

    /// <summary>The URI of every node on its own (for tools that take one node).</summary>
    public IEnumerable<Uri> NodeUris => Nodes.Select(node => new UriBuilder(FirstNode) { Host = node.Host, Port = node.Port }.Uri);

    private static SslOption ForHost(SslOption template, string host) => new(host, template.CertPath, template.Enabled)
    {
        AcceptablePolicyErrors = template.AcceptablePolicyErrors,
        CertPassphrase = template.CertPassphrase,
        Certs = template.Certs,
        CertificateSelectionCallback = template.CertificateSelectionCallback,
        CertificateValidationCallback = template.CertificateValidationCallback,
        CheckCertificateRevocation = template.CheckCertificateRevocation,
        Version = template.Version,
    };
}
