using System.Diagnostics.Metrics;
using Envio.ConsumerService.Messaging;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// An order id that arrived from a client other than the one whose order is stored under it. The order id is the
/// deduplication key across all clients, so such a message is not stored (the first order stays as it was), but it is
/// never absorbed in silence either: a client that reuses another's id (by mistake or to make that order vanish)
/// got a 202 for an order that will never exist.
/// </summary>
public sealed record ClientConflict(Guid OrderId, string StoredClientId, string SentClientId)
{
    /// <summary>The conflict when both clients are known and differ; null for a retry, or when a side is unknown (an older message or row).</summary>
    public static ClientConflict? Between(Guid orderId, string? stored, string? sent) =>
        stored is not null && sent is not null && !string.Equals(stored, sent, StringComparison.Ordinal)
            ? new ClientConflict(orderId, stored, sent)
            : null;
}

/// <summary>Finds, counts (<c>envio.consumer.client_conflicts</c>) and logs, as a warning naming both clients, every <see cref="ClientConflict"/>.</summary>
public static partial class ClientConflicts
{
    /// <summary>
    /// The messages of a committed batch whose order id is stored for another client. <paramref name="storedClients"/>
    /// holds, for the ids a store had to look at, the client stored with each after the commit (whoever stored it).
    /// </summary>
    public static List<ClientConflict> Find(IReadOnlyList<ReceivedOrder> batch, IReadOnlyDictionary<Guid, string?> storedClients)
    {
        var conflicts = new List<ClientConflict>();
        foreach (var received in batch)
        {
            if (storedClients.TryGetValue(received.Order.OrderId, out var stored)
                && ClientConflict.Between(received.Order.OrderId, stored, received.ClientId) is { } conflict)
            {
                conflicts.Add(conflict);
            }
        }
        return conflicts;
    }

    /// <summary>
    /// For a batch written whole (every order new): the client each order was stored with, the first copy's. Empty
    /// when the batch held each id once, since then no message can disagree with what was stored.
    /// </summary>
    public static Dictionary<Guid, string?> OfRows(IReadOnlyList<ReceivedOrder> batch, List<OrderRow> rows) =>
        batch.Count == rows.Count ? [] : rows.ToDictionary(row => row.OrderId, row => row.ClientId);

    private static readonly Meter Meter = new(ConsumerTelemetry.Name);

    private static readonly Counter<long> Count = Meter.CreateCounter<long>(
        "envio.consumer.client_conflicts", "{message}",
        "Messages not stored because their order id is stored already for another client.");

    public static void Report(ILogger logger, IReadOnlyCollection<ClientConflict> conflicts)
    {
        if (conflicts.Count == 0)
        {
            return;
        }
        Count.Add(conflicts.Count);
        foreach (var conflict in conflicts)
        {
            LogConflict(logger, conflict.OrderId, conflict.SentClientId, conflict.StoredClientId);
        }
    }

    [LoggerMessage(LogLevel.Warning,
        "Order {OrderId} from client {SentClientId} was not stored: that order id is stored already for client {StoredClientId}.")]
    private static partial void LogConflict(ILogger logger, Guid orderId, string sentClientId, string storedClientId);
}
