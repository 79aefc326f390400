namespace Envio.ApiService.Messaging;

/// <summary>
/// Which messages of an error queue a replay or discard takes: every one (both sets null), or those whose message id
/// or whose handle (<see cref="FailedMessageHandle"/>) is listed. A message without an id is chosen by its handle only.
/// </summary>
public sealed record FailedMessageSelection(IReadOnlySet<string>? MessageIds, IReadOnlySet<string>? Handles)
{
    /// <summary>A message a scan took, as far as the selection asks.</summary>
    public interface ITaken
    {
        string? MessageId { get; }

        string Handle { get; }
    }

    public static FailedMessageSelection All { get; } = new(null, null);

    public static FailedMessageSelection ById(string messageId) => new(new HashSet<string>(StringComparer.Ordinal) { messageId }, null);

    public static FailedMessageSelection ByHandle(string handle) => new(null, new HashSet<string>(StringComparer.Ordinal) { handle });

    public bool TakesAll => MessageIds is null && Handles is null;

    public bool Matches(string? messageId, string handle) =>
        TakesAll || (messageId is not null && MessageIds?.Contains(messageId) == true) || Handles?.Contains(handle) == true;

    /// <summary>The listed ids and handles that none of <paramref name="taken"/> had: in the request's terms, what the queue did not hold.</summary>
    public IReadOnlyList<string> NotFoundAmong(IEnumerable<ITaken> taken)
    {
        var found = taken.ToList();
        var ids = found.Where(m => m.MessageId is not null).Select(m => m.MessageId!).ToHashSet(StringComparer.Ordinal);
        var handles = found.Select(m => m.Handle).ToHashSet(StringComparer.Ordinal);
        return [.. (MessageIds ?? Enumerable.Empty<string>()).Where(id => !ids.Contains(id)),
            .. (Handles ?? Enumerable.Empty<string>()).Where(handle => !handles.Contains(handle))];
    }
}
