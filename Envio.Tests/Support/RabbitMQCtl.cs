using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.AppHost.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.Tests.Support;

/// <summary>
/// <c>rabbitmqctl</c> against one node the AppHost runs as a process: it finds the node through the node's epmd and
/// authenticates with the node's Erlang cookie (in the node's <c>HOME</c>), as an operator on that host would.
/// </summary>
public static class RabbitMQCtl
{
    private const string Binary = "/usr/lib/rabbitmq/bin/rabbitmqctl";

    /// <summary>The node resources (<c>messaging-1</c>…) of the stack's broker, in order.</summary>
    public static IReadOnlyList<RabbitMQProcessResource> Nodes(this DistributedApplication app) =>
        [.. app.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<RabbitMQProcessResource>().OrderBy(n => n.Name)];

    public static async Task<string> RunAsync(RabbitMQProcessResource node, CancellationToken ct, params string[] arguments)
    {
        var start = new ProcessStartInfo(Binary, ["-n", node.NodeName, "-q", .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["HOME"] = node.HomeDirectory;
        start.Environment["ERL_EPMD_PORT"] = node.EpmdPort.ToString(CultureInfo.InvariantCulture);
        start.Environment["ERL_EPMD_ADDRESS"] = "127.0.0.1";
        start.Environment["RABBITMQ_NODENAME"] = node.NodeName;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return process.ExitCode == 0
            ? await output
            : throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} on {node.NodeName}: exit {process.ExitCode}: {await error}{await output}");
    }

    /// <summary>
    /// Runs a cluster-wide listing on the first node that answers: in a three-node test the first node may be the one
    /// that is down.
    /// </summary>
    public static async Task<string> RunOnAnyNodeAsync(this DistributedApplication app, CancellationToken ct, params string[] arguments)
    {
        InvalidOperationException? last = null;
        foreach (var node in app.Nodes())
        {
            try
            {
                return await RunAsync(node, ct, arguments);
            }
            catch (InvalidOperationException e)
            {
                last = e;
            }
        }
        throw last ?? new InvalidOperationException("The stack has no broker node.");
    }

    /// <summary>A quorum queue's leader and members (Erlang node names), as one of the running nodes sees them.</summary>
    public static async Task<(string Leader, string[] Members)> QuorumQueueAsync(
        RabbitMQProcessResource node, string virtualHost, string queue, CancellationToken ct)
    {
        var json = await RunAsync(node, ct, "list_queues", "-p", virtualHost, "name", "leader", "members", "--formatter", "json");
        foreach (var row in JsonDocument.Parse(json).RootElement.EnumerateArray())
        {
            if (row.GetProperty("name").GetString() == queue)
            {
                return (row.GetProperty("leader").GetString()!,
                    [.. row.GetProperty("members").EnumerateArray().Select(m => m.GetString()!)]);
            }
        }
        throw new InvalidOperationException($"{node.NodeName} lists no queue {queue} in {virtualHost}: {json}");
    }
}
