using System.Net;
using System.Net.Sockets;
using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>What the tests that need an unreachable broker or database rely on.</summary>
public sealed class ClosedLoopbackPortTests
{
    [Fact]
    public async Task A_held_port_refuses_connections_and_no_server_can_listen_on_it()
    {
        using var closed = new ClosedLoopbackPort();

        using var listener = new TcpListener(IPAddress.Loopback, closed.Port); // binds with SO_REUSEADDR, as servers do
        var taken = Assert.Throws<SocketException>(listener.Start);
        Assert.Equal(SocketError.AddressAlreadyInUse, taken.SocketErrorCode);

        using var client = new TcpClient();
        var refused = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(IPAddress.Loopback, closed.Port, TestContext.Current.CancellationToken).AsTask());
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }
}
