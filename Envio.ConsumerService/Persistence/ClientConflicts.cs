using System.Diagnostics.Metrics;
using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.DataObjects;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// An id that arrived from a client other than the one whose object is stored under it. The id is the deduplication
/// key across all clients, so such a message is not stored (the first object stays as it was), but it is never
/// absorbed in silence either: a client that reuses another's id (by mistake or to make that object vanish) got a 202
/// for an object that will never exist.
/// </summary>
public sealed record ClientConflict(Guid Id, string StoredClientId, string SentClientId)
{
    /// <summary>The conflict when both clients are known and differ; null for a retry, or when a side is unknown (an older message or row).</summary>
    public static ClientConflict? Between(Guid id, string? stored, string? sent) =>
        stored is not null && sent is not null && !string.Equals(stored, sent, StringComparison.Ordinal)
            ? new ClientConflict(id, stored, sent)
            : null;
}

/// <summary>Finds, counts (<c>envio.consumer.client_conflicts</c>) and logs, as a warning naming both clients, every <see cref="ClientConflict"/>.</summary>
public static partial class ClientConflicts
{
    /// <summary>
    /// The messages of a committed batch whose id is stored for another client. <paramref name="storedClients"/>
    /// holds, for the ids a store had to look at, the client stored with each after the commit (whoever stored it).
    /// </summary>
    public static List<ClientConflict> Find<T>(IReadOnlyList<Received<T>> batch, IReadOnlyDictionary<Guid, string?> storedClients) where T : class
    {
        var conflicts = new List<ClientConflict>();
        foreach (var received in batch)
        {
            if (storedClients.TryGetValue(received.Id, out var stored) && ClientConflict.Between(received.Id, stored, received.ClientId) is { } conflict)
            {
                conflicts.Add(conflict);
            }
        }
        return conflicts;
    }

    /// <summary>
    /// For a batch written whole (every object new): the client each was stored with, the first copy's. Empty when the
    /// batch held each id once, since then no message can disagree with what was stored.
    /// </summary>
    public static Dictionary<Guid, string?> OfRows<T>(IReadOnlyList<Received<T>> batch, List<StoredRow<T>> rows) where T : class =>
        batch.Count == rows.Count ? [] : rows.ToDictionary(row => row.Id, row => row.ClientId);

    private static readonly Meter Meter = new(ConsumerTelemetry.Name);

    private static readonly Counter<long> Count = Meter.CreateCounter<long>(
        "envio.consumer.client_conflicts", "{message}",
        "Messages not stored because their id is stored already for another client.");

    public static void Report(ILogger logger, DataObjectType type, IReadOnlyCollection<ClientConflict> conflicts)
    {
        if (conflicts.Count == 0)
        {
            return;
        }
        Count.Add(conflicts.Count, ConsumerTelemetry.TypeTag(type));
        foreach (var conflict in conflicts)
        {
            LogConflict(logger, type.Name, conflict.Id, conflict.SentClientId, conflict.StoredClientId);
        }
    }

    [LoggerMessage(LogLevel.Warning,
        "The {Type} {Id} from client {SentClientId} was not stored: that id is stored already for client {StoredClientId}.")]
    private static partial void LogConflict(ILogger logger, string type, Guid id, string sentClientId, string storedClientId);
}
