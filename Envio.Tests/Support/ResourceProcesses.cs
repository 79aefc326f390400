using System.Diagnostics;
using System.Globalization;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;

namespace Envio.Tests.Support;

/// <summary>The operating-system side of a running resource: its process, and signals sent to it.</summary>
public static class ResourceProcesses
{
    /// <summary>The pid DCP reports for a running executable or project.</summary>
    public static async Task<int> PidAsync(DistributedApplication app, string name, CancellationToken ct)
    {
        var running = await app.ResourceNotifications.WaitForResourceAsync(name, e => e.Snapshot.State?.Text == KnownResourceStates.Running, ct);
        var pid = running.Snapshot.Properties.First(p => p.Name.EndsWith(".pid", StringComparison.Ordinal)).Value;
        return Convert.ToInt32(pid, CultureInfo.InvariantCulture);
    }

    /// <summary>Sends <paramref name="signal"/> (TERM, KILL…) to the resource's process and waits until it is down.</summary>
    public static async Task SignalAsync(DistributedApplication app, string name, string signal, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var pid = await PidAsync(app, name, timeout.Token);
        using (var kill = Process.Start("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(timeout.Token);
            Assert.Equal(0, kill.ExitCode);
        }
        await app.ResourceNotifications.WaitForResourceAsync(name,
            e => KnownResourceStates.TerminalStates.Contains(e.Snapshot.State?.Text), timeout.Token);
    }
}
