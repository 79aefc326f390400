using System.Globalization;
using System.Text.Json;
using Aspire.Hosting;
using Envio.AppHost.Hosting;
using Envio.Contracts;
using Envio.Messaging;
using RabbitMQ.Client;

namespace Envio.Tests.Support;

/// <summary>A queue's messages as the broker counts them: ready (waiting) and delivered but not yet acknowledged.</summary>
public readonly record struct QueueCount(long Ready, long Unacknowledged)
{
    public long Total => Ready + Unacknowledged;
}

/// <summary>
/// The broker's own count of every queue, ready and unacknowledged, read with <c>rabbitmqctl list_queues</c>.
/// AMQP's passive queue.declare reports ready messages only (a queue whose messages sit unacknowledged in a consumer
/// reads 0), and the AppHost's broker has no management plugin: the CLI, talking to the node over Erlang
/// distribution, is what sees both (<see cref="RabbitMQCtl"/>).
/// </summary>
public static class BrokerQueues
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(90);

    /// <summary>Every queue of Envio's virtual host, by name.</summary>
    public static async Task<Dictionary<string, QueueCount>> CountAsync(DistributedApplication app, CancellationToken ct)
    {
        // Any node answers for the whole cluster.
        var output = await RabbitMQCtl.RunAsync(app.Nodes()[0], ct,
            "-p", BrokerPermissions.VirtualHost, "list_queues", "name", "messages_ready", "messages_unacknowledged", "--formatter", "json");
        using var json = JsonDocument.Parse(output[output.IndexOf('[', StringComparison.Ordinal)..]);
        return json.RootElement.EnumerateArray().ToDictionary(
            q => q.GetProperty("name").GetString()!,
            q => new QueueCount(Number(q, "messages_ready"), Number(q, "messages_unacknowledged")));
    }

    /// <summary>Every registered type's work queue, retry queues and error queue under <paramref name="topology"/>, by name.</summary>
    public static async Task<Dictionary<string, QueueCount>> CountAsync(DistributedApplication app, TopologyOptions topology, CancellationToken ct)
    {
        var all = await CountAsync(app, ct);
        return QueuesOf(topology).ToDictionary(name => name, name => all.GetValueOrDefault(name));
    }

    /// <summary>
    /// Waits until every type's work queue and retry queues hold nothing, ready or unacknowledged: everything published
    /// was consumed and acknowledged (or moved to the error queue). Returns the counts that showed it (each call of
    /// the CLI starts an Erlang VM: a second or more).
    /// </summary>
    public static async Task<Dictionary<string, QueueCount>> WaitUntilDrainedAsync(DistributedApplication app, TopologyOptions topology, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + DrainTimeout;
        while (true)
        {
            var counts = await CountAsync(app, topology, ct);
            var errorQueues = DataObjectTypes.Registered.Select(type => topology.NamesOf(type).ErrorQueue).ToHashSet();
            var busy = counts.Where(q => !errorQueues.Contains(q.Key) && q.Value.Total > 0).ToList();
            if (busy.Count == 0)
            {
                return counts;
            }
            Assert.True(DateTime.UtcNow < deadline, "The queues did not drain: " +
                string.Join(", ", busy.Select(q => $"{q.Key} {q.Value.Ready} ready, {q.Value.Unacknowledged} unacked")));
            await Task.Delay(250, ct);
        }
    }

    /// <summary>
    /// Deliveries of <paramref name="queue"/> that its consumers' channels hold unacknowledged at this moment, as the
    /// channels themselves count them: <c>list_consumers</c> names the channels, and <c>list_channels</c> asks each
    /// channel process for its unacknowledged deliveries. Neither reads the statistics that <c>list_queues</c>' totals
    /// come from (a tick behind, and 0 after a restart). An acknowledgement counts once the broker has read it, which it
    /// does not from a connection it blocks. A channel that consumes other queues too counts theirs.
    /// </summary>
    public static async Task<long> HeldByConsumersAsync(DistributedApplication app, string queue, CancellationToken ct)
    {
        var node = app.Nodes()[0];
        var consumers = await RabbitMQCtl.RunAsync(node, ct, "-p", BrokerPermissions.VirtualHost, "list_consumers", "queue_name", "channel_pid", "--formatter", "json");
        using var consumerRows = JsonDocument.Parse(consumers[consumers.IndexOf('[', StringComparison.Ordinal)..]);
        var channels = consumerRows.RootElement.EnumerateArray()
            .Where(c => c.GetProperty("queue_name").GetString() == queue)
            .Select(c => c.GetProperty("channel_pid").GetString()!)
            .ToHashSet(StringComparer.Ordinal);
        Assert.True(channels.Count > 0, $"nothing consumes {queue}");
        var listing = await RabbitMQCtl.RunAsync(node, ct, "list_channels", "pid", "messages_unacknowledged", "--formatter", "json");
        using var channelRows = JsonDocument.Parse(listing[listing.IndexOf('[', StringComparison.Ordinal)..]);
        return channelRows.RootElement.EnumerateArray()
            .Where(c => channels.Contains(c.GetProperty("pid").GetString()!))
            .Sum(c => Number(c, "messages_unacknowledged"));
    }

    /// <summary>
    /// Deliveries that the channels of Envio's virtual host hold unacknowledged at this moment, each channel process
    /// asked for its own (see <see cref="HeldByConsumersAsync"/>): with every consumer counted, also a channel whose
    /// consumer was cancelled while it still writes what it was handed.
    /// </summary>
    public static async Task<long> HeldInVirtualHostAsync(DistributedApplication app, CancellationToken ct)
    {
        var listing = await RabbitMQCtl.RunAsync(app.Nodes()[0], ct, "list_channels", "vhost", "messages_unacknowledged", "--formatter", "json");
        using var rows = JsonDocument.Parse(listing[listing.IndexOf('[', StringComparison.Ordinal)..]);
        return rows.RootElement.EnumerateArray()
            .Where(c => c.GetProperty("vhost").GetString() == BrokerPermissions.VirtualHost)
            .Sum(c => Number(c, "messages_unacknowledged"));
    }

    /// <summary>Messages ready in a queue, the broker's own count at this moment (a passive declare: no statistics lag).</summary>
    public static async Task<uint> ReadyAsync(IConnection broker, string queue, CancellationToken ct)
    {
        await using var channel = await broker.CreateChannelAsync(cancellationToken: ct);
        return (await channel.QueueDeclarePassiveAsync(queue, ct)).MessageCount;
    }

    /// <summary>Each type's work queue, retry queues (one per delay) and error queue.</summary>
    public static IEnumerable<string> QueuesOf(TopologyOptions topology) =>
        DataObjectTypes.Registered.SelectMany(type => topology.NamesOf(type).AllQueues);

    private static long Number(JsonElement queue, string property) =>
        queue.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.Number
            ? value.GetInt64()
            : long.Parse(value.ToString() is { Length: > 0 } text ? text : "0", CultureInfo.InvariantCulture);
}
