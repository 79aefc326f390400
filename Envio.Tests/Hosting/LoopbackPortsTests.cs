using System.Net;
using System.Net.Sockets;
using Envio.AppHost.Hosting;
using Envio.Tests.Support;
using Npgsql;

namespace Envio.Tests.Hosting;

/// <summary>
/// The ports of the servers started as local processes lie below the kernel's ephemeral range, where no listener on
/// port 0 and no outgoing connection is ever given one: nothing can take them between their choice and the server's
/// bind, nor while a server is down and restarts on them.
/// </summary>
public sealed class LoopbackPortsTests
{
    [Fact]
    public void Ports_handed_out_are_free_distinct_and_below_the_ephemeral_range()
    {
        var start = LoopbackPorts.EphemeralRangeStart();
        var ports = Enumerable.Range(0, 100).Select(_ => LoopbackPorts.Free()).ToList();

        Assert.All(ports, port => Assert.InRange(port, 20_000, start - 1));
        Assert.Equal(ports.Count, ports.Distinct().Count());
        using var listener = new TcpListener(IPAddress.Loopback, ports[^1]);
        listener.Start(); // free when handed out
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void The_ephemeral_range_is_read_from_the_kernel()
    {
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        Assert.Equal(int.Parse(File.ReadAllText(range).Split('\t', ' ')[0], System.Globalization.CultureInfo.InvariantCulture), LoopbackPorts.EphemeralRangeStart());
    }
}

/// <summary>The shared stack's broker and database listen on such ports.</summary>
[Collection(AppHostTests.Name)]
public sealed class StackPortsTests(EnvioStack stack)
{
    [Fact]
    public void The_stacks_broker_and_database_listen_below_the_ephemeral_range()
    {
        var start = LoopbackPorts.EphemeralRangeStart();
        Assert.InRange(stack.Broker.Endpoint.Port, 20_000, start - 1);
        Assert.InRange(new NpgsqlConnectionStringBuilder(stack.ServerConnectionString).Port, 20_000, start - 1);
    }
}
