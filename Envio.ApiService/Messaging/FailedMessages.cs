using System.Globalization;
using System.Text;
using Envio.Messaging;
using Envio.Contracts.Security;
using RabbitMQ.Client;

namespace Envio.ApiService.Messaging;

/// <summary>A message in the error queue, with why it failed.</summary>
public sealed record FailedMessage(
    string? MessageId, string? Type, string? CorrelationId, string? Reason, string? Exception, string? FailedAt,
    int Attempts, string? OriginalQueue, string? Consumer, string Body);

/// <summary>A page of the error queue; <see cref="Waiting"/> counts every message in it.</summary>
public sealed record FailedMessagePage(uint Waiting, int Offset, IReadOnlyList<FailedMessage> Messages);

public sealed record ReplayOutcome(IReadOnlyList<string> Replayed, IReadOnlyList<string> NotFound);

/// <summary>
/// The operator's view of the error queue. Reading takes messages without acknowledging them and hands them back
/// with one <c>basic.nack</c> (requeue) before the channel closes: nothing is lost by looking. A nack, not a reject and
/// not the channel's close, because RabbitMQ 4.3 counts those two as failed deliveries against a quorum queue's
/// delivery limit (4.0–4.2 count every return, which is why the error queue has its limit turned off there; see
/// <see cref="Topology.ErrorQueueArguments"/>). A replay publishes the original message (same
/// id, so idempotency holds; failure headers removed, so it gets a full retry budget) to the work exchange, confirmed,
/// and only then acknowledges it in the error queue. A discard acknowledges it and leaves an audit log entry.
/// Bodies stay as they are: an encrypted body is replayed encrypted, and the listing never decrypts it (it names the
/// scheme and key instead), so looking at the error queue does not show customers' data.
/// </summary>
public sealed partial class FailedMessages(AdminConnection admin, ILogger<FailedMessages> logger)
{
    /// <summary>The most messages one call looks through.</summary>
    public const int MaxScan = 10_000;

    public async Task<FailedMessagePage> ListAsync(QueueNames names, int offset, int limit, CancellationToken cancellationToken)
    {
        await using var channel = await admin.CreateChannelAsync(null, cancellationToken);
        var waiting = (await channel.QueueDeclarePassiveAsync(names.ErrorQueue, cancellationToken)).MessageCount;
        var page = new List<FailedMessage>(limit);
        ulong lastTag = 0;
        for (var index = 0; index < Math.Min(offset + limit, MaxScan); index++)
        {
            if (await channel.BasicGetAsync(names.ErrorQueue, autoAck: false, cancellationToken) is not { } message)
            {
                break;
            }
            lastTag = message.DeliveryTag;
            if (index >= offset)
            {
                page.Add(Describe(message));
            }
        }
        await GiveBackAsync(channel, lastTag);
        return new FailedMessagePage(waiting, offset, page);
    }

    /// <summary>Replays the messages with these ids, or every message when <paramref name="messageIds"/> is null, to their type's work queue.</summary>
    public async Task<ReplayOutcome> ReplayAsync(QueueNames names, IReadOnlySet<string>? messageIds, string operatorName, CancellationToken cancellationToken)
    {
        await using var publisher = await admin.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
        var replayed = await TakeAsync(names, messageIds, async (channel, message) =>
        {
            await publisher.BasicPublishAsync(names.Exchange, names.RoutingKey, mandatory: true,
                Restored(message.BasicProperties), message.Body, cancellationToken);
            await channel.BasicAckAsync(message.DeliveryTag, multiple: false, cancellationToken);
            LogReplayed(logger, message.BasicProperties.MessageId, operatorName, Text(message, FailureHeaders.Reason));
        }, cancellationToken);
        return new ReplayOutcome(replayed, messageIds?.Except(replayed).ToList() ?? []);
    }

    /// <summary>Removes one message for good; the audit log keeps who, which and why it had failed.</summary>
    public async Task<bool> DiscardAsync(QueueNames names, string messageId, string operatorName, CancellationToken cancellationToken)
    {
        var discarded = await TakeAsync(names, new HashSet<string> { messageId }, async (channel, message) =>
        {
            await channel.BasicAckAsync(message.DeliveryTag, multiple: false, cancellationToken);
            LogDiscarded(logger, messageId, operatorName, Text(message, FailureHeaders.Reason));
        }, cancellationToken);
        return discarded.Count > 0;
    }

    /// <summary>Looks through the queue and applies <paramref name="take"/> to the chosen messages; the others go back.</summary>
    private async Task<List<string>> TakeAsync(
        QueueNames names, IReadOnlySet<string>? messageIds, Func<IChannel, BasicGetResult, Task> take, CancellationToken cancellationToken)
    {
        await using var channel = await admin.CreateChannelAsync(null, cancellationToken);
        // Replaying all: only what waits when the call begins, as a replayed message that fails again comes back
        // behind those and must not be replayed again (and again) by the same call. By id, the scan ends when the queue
        // does (what is not taken stays unacked on this channel until the end, so nothing is seen twice): the count
        // can lag just after messages went back to the queue.
        var scanLimit = messageIds is null
            ? Math.Min(MaxScan, (await channel.QueueDeclarePassiveAsync(names.ErrorQueue, cancellationToken)).MessageCount)
            : MaxScan;
        var taken = new List<string>();
        var found = new HashSet<string>(StringComparer.Ordinal); // two copies of one id are one id found, not two
        ulong lastTag = 0;
        for (var scanned = 0; scanned < scanLimit && (messageIds is null || found.Count < messageIds.Count); scanned++)
        {
            if (await channel.BasicGetAsync(names.ErrorQueue, autoAck: false, cancellationToken) is not { } message)
            {
                break;
            }
            var id = message.BasicProperties.MessageId ?? "";
            if (messageIds is null || messageIds.Contains(id))
            {
                await take(channel, message);
                taken.Add(id);
                found.Add(id);
            }
            else
            {
                lastTag = message.DeliveryTag;
            }
        }
        await GiveBackAsync(channel, lastTag);
        return taken;
    }

    /// <summary>Every message looked at and not taken goes back to the queue, uncounted (see the class's summary).</summary>
    private static async Task GiveBackAsync(IChannel channel, ulong lastTag)
    {
        if (lastTag > 0 && channel.IsOpen)
        {
            await channel.BasicNackAsync(lastTag, multiple: true, requeue: true, CancellationToken.None);
        }
    }

    private static BasicProperties Restored(IReadOnlyBasicProperties failed)
    {
        var headers = new Dictionary<string, object?>(failed.Headers ?? new Dictionary<string, object?>());
        foreach (var header in FailureHeaders.OfFailure)
        {
            headers.Remove(header);
        }
        headers.Remove("x-death"); // the broker's own dead-lettering history (delivery limit)
        headers[FailureHeaders.ReplayedAt] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        return new BasicProperties(failed) { Persistent = true, Headers = headers };
    }

    private static FailedMessage Describe(BasicGetResult message)
    {
        var properties = message.BasicProperties;
        var attempts = properties.Headers?.TryGetValue(FailureHeaders.Attempts, out var value) == true && value is int n ? n : 0;
        return new FailedMessage(properties.MessageId, properties.Type, properties.CorrelationId,
            Text(message, FailureHeaders.Reason) ?? DeathReason(properties), Text(message, FailureHeaders.Exception),
            Text(message, FailureHeaders.FailedAt), attempts, Text(message, FailureHeaders.OriginalQueue),
            Text(message, FailureHeaders.Consumer), Body(properties, message.Body));
    }

    // A message the broker dead-lettered itself (the quorum queue's delivery limit) has no reason of ours.
    private static string? DeathReason(IReadOnlyBasicProperties properties) =>
        properties.Headers?.ContainsKey("x-death") == true
            ? "Dead-lettered by the broker: delivered too many times without an acknowledgement (it may crash the consumer)."
            : null;

    private static string? Text(BasicGetResult message, string header) =>
        message.BasicProperties.Headers?.TryGetValue(header, out var value) == true
            ? value switch { byte[] bytes => Encoding.UTF8.GetString(bytes), null => null, _ => Convert.ToString(value, CultureInfo.InvariantCulture) }
            : null;

    /// <summary>
    /// An encrypted body is described, not decrypted: the listing is for finding out why a message failed, and the
    /// reason says that. A plaintext body (a foreign producer's, refused for being plaintext) is shown as it is: it is
    /// in the broker unencrypted already, and the operator needs to see what was sent.
    /// </summary>
    private static string Body(IReadOnlyBasicProperties properties, ReadOnlyMemory<byte> body)
    {
        if (EncryptedBody.SchemeOf(properties) is { } scheme)
        {
            return $"encrypted: {scheme}, key {SealedValue.KeyIdOf(body.Span) ?? "unknown"}, {body.Length} bytes (not shown)";
        }
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body.Span);
        }
        catch (DecoderFallbackException)
        {
            return "base64:" + Convert.ToBase64String(body.Span);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Audit: message {MessageId} replayed from the error queue by {OperatorName} (it had failed: {Reason}).")]
    private static partial void LogReplayed(ILogger logger, string? messageId, string operatorName, string? reason);

    [LoggerMessage(LogLevel.Warning, "Audit: message {MessageId} discarded from the error queue by {OperatorName} (it had failed: {Reason}).")]
    private static partial void LogDiscarded(ILogger logger, string messageId, string operatorName, string? reason);
}
