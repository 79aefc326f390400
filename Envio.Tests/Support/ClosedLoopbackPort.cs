using System.Net;
using System.Net.Sockets;

namespace Envio.Tests.Support;

/// <summary>
/// A loopback port nothing listens on, held until disposed: a connection to it is refused at once, and no server
/// started meanwhile (a broker, a database, another test's API) can take it. A port bound, read and released would be
/// free for anyone to listen on before the test connects to it.
/// </summary>
public sealed class ClosedLoopbackPort : IDisposable
{
    // SOL_SOCKET and SO_REUSEADDR on Linux.
    private const int SocketLevel = 1;
    private const int ReuseAddress = 2;

    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public ClosedLoopbackPort()
    {
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        // .NET binds with SO_REUSEADDR on Unix, and Linux lets another SO_REUSEADDR socket (what servers use) bind
        // next to one that does not listen: the flag is cleared so that the port stays ours alone.
        _socket.SetRawSocketOption(SocketLevel, ReuseAddress, BitConverter.GetBytes(0));
        Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
    }

    public int Port { get; }

    public void Dispose() => _socket.Dispose();
}
