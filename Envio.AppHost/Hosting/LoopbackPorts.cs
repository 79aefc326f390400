using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Envio.AppHost.Hosting;

/// <summary>
/// Free loopback ports for the servers the AppHost starts as local processes, chosen below the kernel's ephemeral
/// range. A port the kernel hands out (a listener on port 0, and every outgoing connection's own end) lies in that
/// range, so a server's port chosen there could be taken by any client's connection between the choice and the
/// server's bind, or while the server restarts (a test's outage, a crash): a port below it is never handed out, only
/// taken by someone binding that very number. Ports handed out by this process are not handed out again.
/// </summary>
internal static class LoopbackPorts
{
    /// <summary>The lowest port chosen: above the registered services most machines run.</summary>
    private const int Floor = 20_000;

    private static readonly HashSet<int> HandedOut = [];

    public static int Free()
    {
        var below = EphemeralRangeStart();
        lock (HandedOut)
        {
            for (var attempt = 0; below - Floor > 1_000 && attempt < 200; attempt++)
            {
                var port = Random.Shared.Next(Floor, below);
                if (!HandedOut.Contains(port) && IsFree(port))
                {
                    HandedOut.Add(port);
                    return port;
                }
            }
            // An ephemeral range that starts too low to leave room below it: the kernel's choice.
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var chosen = ((IPEndPoint)listener.LocalEndpoint).Port;
            HandedOut.Add(chosen);
            return chosen;
        }
    }

    /// <summary>
    /// The first port of the kernel's ephemeral range: Linux's <c>ip_local_port_range</c>, or 49152 (IANA's dynamic
    /// range, where Windows and macOS start) where there is no such file.
    /// </summary>
    public static int EphemeralRangeStart()
    {
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        return File.Exists(range)
            && int.TryParse(File.ReadAllText(range).Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
            ? start : 49_152;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
