using System.Globalization;
using Envio.Tests.Support;

namespace Envio.Tests.Security;

/// <summary>
/// The local broker exposes nothing but its TLS listener on loopback: Erlang distribution (what rabbitmqctl and other
/// nodes speak, guarded only by the cookie) and the port mapper listen on loopback too, never on every interface.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class BrokerExposureTests(EnvioStack stack)
{
    private static readonly string[] SocketTables = ["/proc/net/tcp", "/proc/net/tcp6"];

    [Fact]
    public async Task Erlang_distribution_and_the_port_mapper_listen_on_loopback_only()
    {
        var ct = TestContext.Current.CancellationToken;
        var settings = (await ResourceSettings.OfAsync(stack.App, "messaging", ct)).ToDictionary(s => s.Key, s => s.Value);
        foreach (var variable in new[] { "RABBITMQ_DIST_PORT", "ERL_EPMD_PORT" })
        {
            var port = int.Parse(settings[variable]!, CultureInfo.InvariantCulture);
            var addresses = ListeningAddresses(port);
            Assert.True(addresses.Count > 0, $"nothing listens on {variable} {port}: the check would prove nothing");
            Assert.All(addresses, address => Assert.True(address is "0100007F" or "00000000000000000000000001000000",
                $"{variable} {port} listens on {address} (hex, as /proc/net/tcp writes it), not loopback"));
        }
    }

    /// <summary>The local addresses of the sockets listening on <paramref name="port"/>, as /proc/net/tcp{,6} write them.</summary>
    private static List<string> ListeningAddresses(int port) =>
    [
        .. SocketTables.Where(File.Exists).SelectMany(File.ReadLines) // each table's header fails the LISTEN test below
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length > 3 && fields[3] == "0A") // LISTEN
            .Select(fields => fields[1].Split(':'))
            .Where(local => int.Parse(local[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == port)
            .Select(local => local[0]),
    ];
}
