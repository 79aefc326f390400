using System.Diagnostics;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Envio.Tests.Support;

/// <summary>
/// <c>rabbitmqctl</c> against a stack's broker (processes mode): run with the node's own environment (its home and
/// Erlang cookie, node name and epmd port), the way an operator on the machine would.
/// </summary>
public static class BrokerControl
{
    private const string Rabbitmqctl = "/usr/lib/rabbitmq/bin/rabbitmqctl";

    /// <summary>Runs one command and returns its standard output; a failing command fails the test with its output.</summary>
    public static async Task<string> RunAsync(DistributedApplication app, CancellationToken ct, params string[] arguments)
    {
        var broker = app.Services.GetRequiredService<DistributedApplicationModel>().Resources
            .OfType<IResourceWithEnvironment>().Single(r => r.Name == "messaging");
        var configuration = await ExecutionConfigurationBuilder.Create(broker).WithEnvironmentVariablesConfig()
            .BuildAsync(app.Services.GetRequiredService<DistributedApplicationExecutionContext>(), NullLogger.Instance, ct);
        var start = new ProcessStartInfo(Rabbitmqctl, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in configuration.EnvironmentVariables)
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var errors = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        Assert.True(process.ExitCode == 0, $"rabbitmqctl {string.Join(' ', arguments)}: {await errors}{await output}");
        return await output;
    }

    /// <summary>
    /// Sets off the broker's memory alarm (a watermark far below what it uses): it blocks every connection that
    /// publishes, as when memory runs out. Disposing restores the watermark.
    /// </summary>
    public static async Task<IAsyncDisposable> MemoryAlarmAsync(DistributedApplication app, CancellationToken ct)
    {
        await RunAsync(app, ct, "set_vm_memory_high_watermark", "absolute", "1");
        return new Restore(() => RunAsync(app, CancellationToken.None, "set_vm_memory_high_watermark", "0.4"));
    }

    /// <summary>Closes the broker's end of the connections whose client-provided name contains <paramref name="nameContains"/>.</summary>
    public static async Task<int> CloseConnectionsAsync(DistributedApplication app, string nameContains, CancellationToken ct)
    {
        var listing = await RunAsync(app, ct, "list_connections", "--no-table-headers", "--quiet", "pid", "client_properties");
        var pids = listing.Split('\n').Where(line => line.Contains(nameContains, StringComparison.Ordinal))
            .Select(line => line.Split('\t')[0].Trim()).ToList();
        foreach (var pid in pids)
        {
            await RunAsync(app, ct, "close_connection", pid, "closed by a test");
        }
        return pids.Count;
    }

    private sealed class Restore(Func<Task> restore) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await restore();
    }
}
