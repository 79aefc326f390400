using Aspire.Hosting;

namespace Envio.Tests.Support;

/// <summary>Faults an operator's <c>rabbitmqctl</c> makes on a stack's (single-node) broker.</summary>
public static class BrokerControl
{
    /// <summary>
    /// Sets off the broker's memory alarm (a watermark far below what it uses): it blocks every connection that
    /// publishes, as when memory runs out. Disposing restores the default watermark.
    /// </summary>
    public static async Task<IAsyncDisposable> MemoryAlarmAsync(DistributedApplication app, CancellationToken ct)
    {
        var node = app.Nodes()[0];
        await RabbitMQCtl.RunAsync(node, ct, "set_vm_memory_high_watermark", "absolute", "1");
        return new Restore(() => RabbitMQCtl.RunAsync(node, CancellationToken.None, "set_vm_memory_high_watermark", "0.4"));
    }

    /// <summary>
    /// Sets off the broker's disk alarm (a free-disk limit far above what the disk has): like the memory alarm it
    /// blocks every connection that publishes. Disposing restores the default limit (50 MB).
    /// </summary>
    public static async Task<IAsyncDisposable> DiskAlarmAsync(DistributedApplication app, CancellationToken ct)
    {
        var node = app.Nodes()[0];
        await RabbitMQCtl.RunAsync(node, ct, "set_disk_free_limit", "1000000GB");
        return new Restore(() => RabbitMQCtl.RunAsync(node, CancellationToken.None, "set_disk_free_limit", "50MB"));
    }

    /// <summary>Closes the broker's end of the connections whose client-provided name contains <paramref name="nameContains"/>.</summary>
    public static async Task<int> CloseConnectionsAsync(DistributedApplication app, string nameContains, CancellationToken ct)
    {
        var node = app.Nodes()[0];
        var listing = await RabbitMQCtl.RunAsync(node, ct, "list_connections", "--no-table-headers", "pid", "client_properties");
        var pids = listing.Split('\n').Where(line => line.Contains(nameContains, StringComparison.Ordinal))
            .Select(line => line.Split('\t')[0].Trim()).ToList();
        foreach (var pid in pids)
        {
            await RabbitMQCtl.RunAsync(node, ct, "close_connection", pid, "closed by a test");
        }
        return pids.Count;
    }

    private sealed class Restore(Func<Task> restore) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await restore();
    }
}
