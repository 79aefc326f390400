using Envio.Messaging;
using RabbitMQ.Client;

namespace Envio.ApiService.Messaging;

/// <summary>
/// The broker connection of operators' calls (listing, replaying and discarding the error queue; pause and resume),
/// apart from the one objects are published on. During a memory or disk alarm the broker stops reading from every
/// connection that publishes, all its channels at once: on the shared connection an operator could not even list the
/// error queue while clients get 503s. Opened at the first call; the client recovers it like the other. It connects
/// as the broker's administrator identity when one is given (<c>ConnectionStrings:messaging-admin</c>): that user, not
/// the publishing one, may declare the topology, read the error queue and send commands to the consumers.
/// </summary>
public sealed class AdminConnection(IConnectionFactory factory) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;

    /// <summary>A channel on the operators' connection, opening it first if need be.</summary>
    public async Task<IChannel> CreateChannelAsync(CreateChannelOptions? options, CancellationToken cancellationToken) =>
        await (await GetAsync(cancellationToken)).CreateChannelAsync(options, cancellationToken);

    /// <summary>The broker user this connection logs in as: the <c>user_id</c> the broker validates on what it publishes.</summary>
    public string UserName => factory.UserName;

    /// <summary>The version of the broker this connection reached, opening it first if need be.</summary>
    public async Task<Envio.Messaging.BrokerVersion> BrokerVersionAsync(CancellationToken cancellationToken) =>
        Envio.Messaging.BrokerVersion.Of(await GetAsync(cancellationToken));

    private async Task<IConnection> GetAsync(CancellationToken cancellationToken)
    {
        if (_connection is { } opened)
        {
            return opened;
        }
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return _connection ??= await factory.CreateConnectionAsync($"{Environment.MachineName} envio-api admin", cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Declares the type's topology as the administrator (see <see cref="Topology.DeclareAsync"/>).</summary>
    public async Task<TopologyDeclaration> DeclareAsync(QueueNames names, CancellationToken cancellationToken) =>
        await Topology.DeclareAsync(await GetAsync(cancellationToken), names, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_connection is { } opened)
        {
            await opened.DisposeAsync();
        }
        _gate.Dispose();
    }
}
