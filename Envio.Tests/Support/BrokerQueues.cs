using System.Globalization;
using System.Text.Json;
using Aspire.Hosting;
using Envio.AppHost.Hosting;
using Envio.Contracts;
using Envio.Messaging;
using RabbitMQ.Client;

namespace Envio.Tests.Support;

/// <summary>
/// What the broker holds, counted exactly: messages ready in a queue (AMQP's passive queue.declare, the queue's own
/// count at that moment) and deliveries held unacknowledged (each channel's own count, asked over the CLI, since the
/// AppHost's broker has no management plugin: <see cref="RabbitMQCtl"/>). Never <c>list_queues</c>' totals: they come
/// from statistics a tick behind, and read 0 after a restart.
/// </summary>
public static class BrokerQueues
{
    /// <summary>
    /// Waits until nothing is left to consume: no message ready in a work or retry queue (passive declares) and none
    /// held unacknowledged by a channel (each channel's own count), twice over in an order that a message moving
    /// between them (a retry expiring into the work queue, a batch moved to a retry queue) cannot slip through unseen.
    /// The broker's queue totals are no use here: they lag by a statistics tick and read 0 after a restart.
    /// </summary>
    public static async Task WaitUntilSettledAsync(DistributedApplication app, IConnection broker, TopologyOptions topology, CancellationToken ct)
    {
        var retryQueues = DataObjectTypes.Registered.SelectMany(type => topology.NamesOf(type).RetryQueues).ToList();
        var workQueues = DataObjectTypes.Registered.Select(type => topology.NamesOf(type).Queue).ToList();
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        string? busy;
        while ((busy = await ReadyInAnyAsync(broker, retryQueues, ct) ?? await ReadyInAnyAsync(broker, workQueues, ct)
            ?? await HeldAsync(app, ct) ?? await ReadyInAnyAsync(broker, retryQueues, ct) ?? await ReadyInAnyAsync(broker, workQueues, ct)) is not null)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the queues never settled: {busy}");
            await Task.Delay(250, ct);
        }

        static async Task<string?> ReadyInAnyAsync(IConnection broker, List<string> queues, CancellationToken ct)
        {
            foreach (var queue in queues)
            {
                try
                {
                    if (await ReadyAsync(broker, queue, ct) is > 0 and var ready)
                    {
                        return $"{ready} ready in {queue}";
                    }
                }
                catch (RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.NotFound)
                {
                    // A retry step this run's consumer does not use (the test set other delays): it holds nothing.
                }
            }
            return null;
        }

        static async Task<string?> HeldAsync(DistributedApplication app, CancellationToken ct) =>
            await HeldInVirtualHostAsync(app, ct) is > 0 and var held ? $"{held} held unacknowledged" : null;
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
        var consumers = await app.RunOnAnyNodeAsync(ct, "-p", BrokerPermissions.VirtualHost, "list_consumers", "queue_name", "channel_pid", "--formatter", "json");
        using var consumerRows = JsonDocument.Parse(consumers[consumers.IndexOf('[', StringComparison.Ordinal)..]);
        var channels = consumerRows.RootElement.EnumerateArray()
            .Where(c => c.GetProperty("queue_name").GetString() == queue)
            .Select(c => c.GetProperty("channel_pid").GetString()!)
            .ToHashSet(StringComparer.Ordinal);
        Assert.True(channels.Count > 0, $"nothing consumes {queue}");
        var listing = await app.RunOnAnyNodeAsync(ct, "list_channels", "pid", "messages_unacknowledged", "--formatter", "json");
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
        var listing = await app.RunOnAnyNodeAsync(ct, "list_channels", "vhost", "messages_unacknowledged", "--formatter", "json");
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

    /// <summary>Takes every message of a queue no consumer reads (a test's own) and returns their ids in queue order.</summary>
    public static async Task<List<Guid>> TakeIdsAsync(IConnection broker, string queue, CancellationToken ct)
    {
        await using var channel = await broker.CreateChannelAsync(cancellationToken: ct);
        var ids = new List<Guid>();
        while (await channel.BasicGetAsync(queue, autoAck: true, ct) is { } message)
        {
            ids.Add(Guid.Parse(message.BasicProperties.MessageId!));
        }
        return ids;
    }

    private static long Number(JsonElement queue, string property) =>
        queue.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.Number
            ? value.GetInt64()
            : long.Parse(value.ToString() is { Length: > 0 } text ? text : "0", CultureInfo.InvariantCulture);
}
