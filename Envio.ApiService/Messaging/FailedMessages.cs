using System.Globalization;
using System.Text;
using Envio.Messaging;
using Envio.Contracts.Security;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.ApiService.Messaging;

/// <summary>A message in the error queue, with why it failed; <see cref="Handle"/> names it without its id (see <see cref="FailedMessageHandle"/>).</summary>
public sealed record FailedMessage(
    string Handle, string? MessageId, string? Type, string? CorrelationId, string? Reason, string? Exception, string? FailedAt,
    int Attempts, string? OriginalQueue, string? Consumer, string Body);

/// <summary>A page of the error queue; <see cref="Waiting"/> counts every message in it.</summary>
public sealed record FailedMessagePage(uint Waiting, int Offset, IReadOnlyList<FailedMessage> Messages);

/// <summary>
/// What a replay did: the id of each message it replayed (one entry per copy; a message without an id has none), the
/// handle of each (one per copy, also without an id), and the requested ids and handles it found nowhere in the queue.
/// </summary>
public sealed record ReplayOutcome(IReadOnlyList<string> Replayed, IReadOnlyList<string> NotFound, IReadOnlyList<string> ReplayedHandles);

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
public sealed partial class FailedMessages(AdminConnection admin, IOptions<ErrorQueueOptions> options, ILogger<FailedMessages> logger)
{
    /// <summary>The most messages one call looks through.</summary>
    public const int MaxScan = 10_000;

    public async Task<FailedMessagePage> ListAsync(QueueNames names, int offset, int limit, CancellationToken cancellationToken)
    {
        await EnsureReadableAsync(names, cancellationToken);
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

    /// <summary>Replays the chosen messages, every copy of each, to their type's work queue.</summary>
    public async Task<ReplayOutcome> ReplayAsync(QueueNames names, FailedMessageSelection selection, string operatorName, CancellationToken cancellationToken)
    {
        await EnsureReadableAsync(names, cancellationToken);
        await using var publisher = await admin.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
        // Every message this call replays carries this time (to the 100 ns, so it names the call); one that fails again
        // at once comes back to the queue during the scan with it still on (the consumer keeps a message's headers),
        // and is left alone.
        var stamp = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        var replayed = await TakeAsync(names, selection, firstOnly: false, stamp, async (channel, message) =>
        {
            await publisher.BasicPublishAsync(names.Exchange, names.RoutingKey, mandatory: true,
                Restored(message.BasicProperties, stamp), message.Body, cancellationToken);
            await channel.BasicAckAsync(message.DeliveryTag, multiple: false, cancellationToken);
            LogReplayed(logger, message.BasicProperties.MessageId, FailedMessageHandle.Of(message.BasicProperties, message.Body),
                operatorName, Text(message, FailureHeaders.Reason));
        }, cancellationToken);
        return new ReplayOutcome(
            [.. replayed.Where(m => m.MessageId is not null).Select(m => m.MessageId!)],
            selection.NotFoundAmong(replayed),
            [.. replayed.Select(m => m.Handle)]);
    }

    /// <summary>
    /// Removes one chosen message for good, the first found (one copy, when an id or handle has two); the audit log
    /// keeps who, which and why it had failed.
    /// </summary>
    public async Task<bool> DiscardAsync(QueueNames names, FailedMessageSelection selection, string operatorName, CancellationToken cancellationToken)
    {
        await EnsureReadableAsync(names, cancellationToken);
        var discarded = await TakeAsync(names, selection, firstOnly: true, replayStamp: null, async (channel, message) =>
        {
            await channel.BasicAckAsync(message.DeliveryTag, multiple: false, cancellationToken);
            LogDiscarded(logger, message.BasicProperties.MessageId, FailedMessageHandle.Of(message.BasicProperties, message.Body),
                operatorName, Text(message, FailureHeaders.Reason));
        }, cancellationToken);
        return discarded.Count > 0;
    }

    /// <summary>
    /// Looks through the queue and applies <paramref name="take"/> to the chosen messages; the others go back. Taking
    /// all: only what waits when the call begins (by the queue's count), as a replayed message that fails again comes
    /// back behind those. Taking some: to the end of the queue, past every copy, whatever the count says (it can lag
    /// just after messages went back), so no copy is missed; what is not taken stays unacknowledged on this channel
    /// until the end, so nothing is seen twice, and a message this call replayed is recognised by its stamp.
    /// </summary>
    private async Task<List<TakenMessage>> TakeAsync(QueueNames names, FailedMessageSelection selection, bool firstOnly, string? replayStamp,
        Func<IChannel, BasicGetResult, Task> take, CancellationToken cancellationToken)
    {
        await using var channel = await admin.CreateChannelAsync(null, cancellationToken);
        var scanLimit = selection.TakesAll
            ? Math.Min(MaxScan, (await channel.QueueDeclarePassiveAsync(names.ErrorQueue, cancellationToken)).MessageCount)
            : MaxScan;
        var taken = new List<TakenMessage>();
        ulong lastTag = 0;
        for (var scanned = 0; scanned < scanLimit && !(firstOnly && taken.Count > 0); scanned++)
        {
            if (await channel.BasicGetAsync(names.ErrorQueue, autoAck: false, cancellationToken) is not { } message)
            {
                break;
            }
            var handle = FailedMessageHandle.Of(message.BasicProperties, message.Body);
            var replayedByThisCall = replayStamp is not null && Text(message, FailureHeaders.ReplayedAt) == replayStamp;
            if (!replayedByThisCall && selection.Matches(message.BasicProperties.MessageId, handle))
            {
                await take(channel, message);
                taken.Add(new TakenMessage(message.BasicProperties.MessageId, handle));
            }
            else
            {
                lastTag = message.DeliveryTag;
            }
        }
        await GiveBackAsync(channel, lastTag);
        return taken;
    }

    /// <summary>
    /// Refuses (<see cref="ErrorQueueReadRefusedException"/>) to read an error queue whose reads count toward a delivery
    /// limit; see <see cref="ErrorQueueDeliveryLimit"/>. Only on the versions where that can be: elsewhere no declaration.
    /// </summary>
    private async Task EnsureReadableAsync(QueueNames names, CancellationToken cancellationToken)
    {
        var broker = await admin.BrokerVersionAsync(cancellationToken);
        var raisedByPolicy = options.Value.DeliveryLimitRaisedByPolicy;
        if (!ErrorQueueDeliveryLimit.NeedsCheck(broker, raisedByPolicy))
        {
            return;
        }
        bool declaredAsEnvioDoes;
        try
        {
            await using var channel = await admin.CreateChannelAsync(null, cancellationToken);
            await channel.QueueDeclareAsync(names.ErrorQueue, durable: true, exclusive: false, autoDelete: false,
                arguments: Topology.ErrorQueueArguments(names.Options, broker), cancellationToken: cancellationToken);
            declaredAsEnvioDoes = true;
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.PreconditionFailed)
        {
            // The broker's words name the vhost: the log has them, the caller gets the queue and the command.
            LogDeclarationRefused(logger, names.ErrorQueue, e.ShutdownReason.ReplyText);
            declaredAsEnvioDoes = false;
        }
        if (ErrorQueueDeliveryLimit.Assess(broker, names, declaredAsEnvioDoes, raisedByPolicy) is { } refusal)
        {
            throw new ErrorQueueReadRefusedException(refusal);
        }
    }

    /// <summary>Every message looked at and not taken goes back to the queue, uncounted (see the class's summary).</summary>
    private static async Task GiveBackAsync(IChannel channel, ulong lastTag)
    {
        if (lastTag > 0 && channel.IsOpen)
        {
            await channel.BasicNackAsync(lastTag, multiple: true, requeue: true, CancellationToken.None);
        }
    }

    private static BasicProperties Restored(IReadOnlyBasicProperties failed, string replayStamp)
    {
        var headers = new Dictionary<string, object?>(failed.Headers ?? new Dictionary<string, object?>());
        foreach (var header in FailureHeaders.OfFailure)
        {
            headers.Remove(header);
        }
        headers.Remove("x-death"); // the broker's own dead-lettering history (delivery limit)
        headers[FailureHeaders.ReplayedAt] = replayStamp;
        headers.Remove("x-delivery-count"); // the error queue's count of reads, not the work queue's
        return new BasicProperties(failed) { Persistent = true, Headers = headers };
    }

    private static FailedMessage Describe(BasicGetResult message)
    {
        var properties = message.BasicProperties;
        var attempts = properties.Headers?.TryGetValue(FailureHeaders.Attempts, out var value) == true && value is int n ? n : 0;
        return new FailedMessage(FailedMessageHandle.Of(properties, message.Body), properties.MessageId, properties.Type, properties.CorrelationId,
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

    private sealed record TakenMessage(string? MessageId, string Handle) : FailedMessageSelection.ITaken;

    [LoggerMessage(LogLevel.Warning, "Audit: message {MessageId} (handle {Handle}) replayed from the error queue by {OperatorName} (it had failed: {Reason}).")]
    private static partial void LogReplayed(ILogger logger, string? messageId, string handle, string operatorName, string? reason);

    [LoggerMessage(LogLevel.Warning, "Audit: message {MessageId} (handle {Handle}) discarded from the error queue by {OperatorName} (it had failed: {Reason}).")]
    private static partial void LogDiscarded(ILogger logger, string? messageId, string handle, string operatorName, string? reason);

    [LoggerMessage(LogLevel.Warning, "The error queue {Queue} is not declared as Envio declares it: {BrokerSays}")]
    private static partial void LogDeclarationRefused(ILogger logger, string queue, string brokerSays);
}
