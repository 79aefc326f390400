using System.Globalization;
using System.Text.Json;
using Aspire.Hosting;
using Envio.AppHost.Hosting;
using Envio.Contracts;
using Envio.Messaging;

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

    /// <summary>Each type's work queue, retry queues (one per delay) and error queue.</summary>
    public static IEnumerable<string> QueuesOf(TopologyOptions topology) =>
        DataObjectTypes.Registered.SelectMany(type => topology.NamesOf(type).AllQueues);

    private static long Number(JsonElement queue, string property) =>
        queue.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.Number
            ? value.GetInt64()
            : long.Parse(value.ToString() is { Length: > 0 } text ? text : "0", CultureInfo.InvariantCulture);
}
