using System.Diagnostics;
using System.Globalization;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.Tests.Support;

/// <summary>The operating-system side of a running resource: its process, and signals sent to it.</summary>
public static class ResourceProcesses
{
    /// <summary>The pid DCP reports for a running executable or project.</summary>
    public static async Task<int> PidAsync(DistributedApplication app, string name, CancellationToken ct)
    {
        var running = await app.ResourceNotifications.WaitForResourceAsync(name, e => e.Snapshot.State?.Text == KnownResourceStates.Running, ct);
        return PidOf(running);
    }

    /// <summary>The pid a running resource's (or replica's) event carries.</summary>
    public static int PidOf(ResourceEvent running) =>
        Convert.ToInt32(running.Snapshot.Properties.First(p => p.Name.EndsWith(".pid", StringComparison.Ordinal)).Value, CultureInfo.InvariantCulture);

    /// <summary>
    /// Sends <paramref name="signal"/> (TERM, INT, KILL…) to the resource's process, and with <paramref name="wholeTree"/>
    /// to every process under it too (a SIGKILL to <c>rabbitmq-server</c>'s script or <c>dotnet run</c> alone would
    /// leave the broker or the service running), then waits until the resource is down.
    /// </summary>
    public static async Task SignalAsync(DistributedApplication app, string name, string signal, CancellationToken ct, bool wholeTree = false)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var pid = await PidAsync(app, name, timeout.Token);
        IEnumerable<int> targets = wholeTree ? [pid, .. Descendants(pid)] : [pid];
        using (var kill = Process.Start("kill", [$"-{signal}", .. targets.Select(p => p.ToString(CultureInfo.InvariantCulture))]))
        {
            await kill.WaitForExitAsync(timeout.Token);
        }
        await app.ResourceNotifications.WaitForResourceAsync(name,
            e => KnownResourceStates.TerminalStates.Contains(e.Snapshot.State?.Text), timeout.Token);
    }

    /// <summary>Starts a stopped resource again and waits until it is healthy.</summary>
    public static async Task RestartAsync(DistributedApplication app, string name, CancellationToken ct)
    {
        var resource = app.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == name);
        var result = await app.ResourceCommands.ExecuteCommandAsync(resource, KnownResourceCommands.StartCommand, ct);
        Assert.True(result.Success, $"starting {name}: {result.Message}");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(120));
        await app.ResourceNotifications.WaitForResourceHealthyAsync(name, timeout.Token);
    }

    /// <summary>The API's own process (DCP starts it under a <c>dotnet run</c> wrapper).</summary>
    public static async Task<int> ApiProcessAsync(DistributedApplication app, CancellationToken ct)
    {
        var root = await PidAsync(app, "api", ct);
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(entry), out var pid) && File.Exists(Path.Combine(entry, "cmdline")))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(entry, "cmdline")).Split('\0')[0].EndsWith("/Envio.ApiService", StringComparison.Ordinal)
                        && (pid == root || AncestorsOf(pid).Contains(root)))
                    {
                        return pid;
                    }
                }
                catch (IOException)
                {
                    // Gone meanwhile.
                }
            }
        }
        throw new InvalidOperationException("The API's process was not found.");
    }

    private static IEnumerable<int> AncestorsOf(int pid)
    {
        while (pid > 1)
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            pid = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
            yield return pid;
        }
    }

    /// <summary>The resident memory of a process, in MB; 0 when it cannot be read.</summary>
    public static double ResidentMegabytes(int pid) => StatusMegabytes(pid, "VmRSS:");

    /// <summary>
    /// The private memory a process has committed (its data segment), in MB, touched or not: what .NET's GC counts
    /// against its heap limit (75% of a container's memory limit), so what makes it fail with out-of-memory there.
    /// </summary>
    public static double CommittedMegabytes(int pid) => StatusMegabytes(pid, "VmData:");

    /// <summary>
    /// <see cref="CommittedMegabytes"/> without the threads' stacks: each .NET thread maps 1.5 MB of stack, counted in
    /// VmData, and the thread pool adds threads under load; what a test of buffers measures is the rest.
    /// </summary>
    public static double CommittedWithoutStacksMegabytes(int pid) => CommittedMegabytes(pid) - StatusNumber(pid, "Threads:") * 1.5;

    private static double StatusNumber(int pid, string field)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
            return double.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static double StatusMegabytes(int pid, string field) => StatusNumber(pid, field) / 1024; // the file says kB

    private static List<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(entry), out var pid))
            {
                try
                {
                    // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so read after the last ')'.
                    var stat = File.ReadAllText(Path.Combine(entry, "stat"));
                    parents[pid] = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                }
                catch (IOException)
                {
                    // Gone meanwhile.
                }
            }
        }
        var found = new List<int>();
        var frontier = new Queue<int>([root]);
        while (frontier.TryDequeue(out var parent))
        {
            foreach (var child in parents.Where(p => p.Value == parent).Select(p => p.Key))
            {
                found.Add(child);
                frontier.Enqueue(child);
            }
        }
        return found;
    }
}
