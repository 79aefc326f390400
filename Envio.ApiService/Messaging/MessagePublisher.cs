using System.Diagnostics;
using Envio.Messaging;
using Envio.Contracts.DataObjects;
using Envio.Contracts.Security;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.ApiService.Messaging;

/// <summary>The broker did not confirm every message: the caller must not report them as accepted.</summary>
public sealed class PublishFailedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Publishes data objects of any registered type as persistent messages with publisher confirms, each to its type's
/// exchange. A call returns only when the broker confirmed every message it was given, and throws
/// <see cref="PublishFailedException"/> on a nack, an unroutable message, a lost connection or a confirm timeout.
/// Publishes are pipelined: all messages of a call are in flight before any confirm is awaited, spread over a few
/// long-lived channels; no lock is held while waiting for a confirm. Unconfirmed publishes are bounded per channel by a
/// semaphore of our own: the client's rate limiter fails a publish beyond its limit instead of making it wait, which
/// would turn a large batch into an error. A type's topology is declared before its first publish (and again after a
/// channel was replaced, or after a publish came back unroutable: its queue was deleted), so a type the broker refuses
/// fails alone, and a deleted queue is declared again by the next request. While a type's last publish came back
/// unroutable, <c>/health</c> says Degraded (<see cref="UnroutableTypes"/>).
/// </summary>
public sealed partial class MessagePublisher(
    IConnection connection,
    AdminConnection admin,
    IOptions<PublisherOptions> publisherOptions,
    KeyRing keys,
    UnroutableTypes unroutable,
    QueueMismatches mismatches,
    ILogger<MessagePublisher> logger) : IAsyncDisposable
{
    private readonly PublisherOptions _options = publisherOptions.Value;
    private readonly IChannel?[] _channels = new IChannel?[Math.Max(1, publisherOptions.Value.Channels)];
    private readonly SemaphoreSlim[] _inFlight = Enumerable.Range(0, Math.Max(1, publisherOptions.Value.Channels))
        .Select(_ => new SemaphoreSlim(Math.Max(1, publisherOptions.Value.MaxOutstandingConfirms))).ToArray();
    private readonly SemaphoreSlim _channelGate = new(1, 1);
    private volatile HashSet<DataObjectType> _declared = [];
    private int _next;

    /// <summary>Publishes each message (its envelope, and its body as plaintext JSON, sealed here) to the type's exchange.</summary>
    public async Task PublishAsync(QueueNames names, IReadOnlyList<(Envelope Envelope, byte[] Json)> messages, CancellationToken cancellationToken)
    {
        using var activity = PublisherTelemetry.StartSend(names.Exchange, names.Type, messages.Count);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ConfirmTimeout);
        try
        {
            var (channel, inFlight) = await GetChannelAsync(names, timeout.Token);
            var confirms = new Task[messages.Count];
            for (var i = 0; i < messages.Count; i++)
            {
                await inFlight.WaitAsync(timeout.Token);
                confirms[i] = PublishOneAsync(channel, inFlight, names, messages[i], timeout.Token);
            }
            await Task.WhenAll(confirms);
            unroutable.Confirmed(names.Type);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw Failed(activity, messages, $"The broker did not confirm within {_options.ConfirmTimeout.TotalSeconds:0.#} s.", e);
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.AccessRefused)
        {
            // A broker whose user was given permissions before this type existed (deploy/README.md, adding a type).
            throw Failed(activity, messages, $"The broker refuses this type's exchanges and queues ({names.Exchange}): the user's permissions do not cover them.", e);
        }
        catch (PublishException e)
        {
            if (e.IsReturn)
            {
                // Nothing is bound to the exchange: its queue was deleted. The next request declares it again.
                Forget(names.Type);
                unroutable.Returned(names);
            }
            throw Failed(activity, messages, e.IsReturn ? "The broker could not route the message (no queue bound)." : "The broker refused the message (nack).", e);
        }
        catch (Exception e) when (BrokerFailures.IsUnreachable(e))
        {
            throw Failed(activity, messages, "The broker is unreachable.", e);
        }
        catch (ObjectDisposedException e)
        {
            // The channel closed under this request, and another request already replaced (and disposed) it.
            throw Failed(activity, messages, "The broker connection was lost while publishing.", e);
        }
    }

    private async Task PublishOneAsync(
        IChannel channel, SemaphoreSlim inFlight, QueueNames names, (Envelope Envelope, byte[] Json) message, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            // Encrypted before it leaves the process: the broker stores ciphertext only (see EncryptedBody).
            await channel.BasicPublishAsync(names.Exchange, names.RoutingKey, mandatory: true, EncryptedBody.Properties(message.Envelope),
                EncryptedBody.Seal(keys, message.Envelope, message.Json), cancellationToken);
            PublisherTelemetry.MessageConfirmed(names.Exchange, names.Type, started);
        }
        catch (Exception e)
        {
            PublisherTelemetry.MessageFailed(names.Exchange, names.Type, started, e);
            throw;
        }
        finally
        {
            inFlight.Release();
        }
    }

    private PublishFailedException Failed(Activity? activity, IReadOnlyList<(Envelope Envelope, byte[] Json)> messages, string reason, Exception inner)
    {
        PublisherTelemetry.SendFailed(activity, reason);
        // The ids only (the first message's, and the request's correlation id), never the object itself.
        var first = messages.Count > 0 ? messages[0].Envelope : null;
        LogPublishFailed(logger, messages.Count, first?.MessageId, first?.CorrelationId, reason, inner);
        return new PublishFailedException(reason, inner);
    }

    /// <summary>
    /// One of the channels, round robin, with the type's topology declared; a channel the broker closed is replaced
    /// (and every type's topology declared again before its next publish).
    /// </summary>
    private async ValueTask<(IChannel Channel, SemaphoreSlim InFlight)> GetChannelAsync(QueueNames names, CancellationToken cancellationToken)
    {
        var slot = (int)((uint)Interlocked.Increment(ref _next) % (uint)_channels.Length);
        if (_channels[slot] is { IsClosed: false } open && _declared.Contains(names.Type))
        {
            return (open, _inFlight[slot]);
        }

        await _channelGate.WaitAsync(cancellationToken);
        try
        {
            if (_channels[slot] is not { IsClosed: false })
            {
                if (_channels[slot] is { } closed)
                {
                    await closed.DisposeAsync();
                }
                _declared = [];
                _channels[slot] = await connection.CreateChannelAsync(new CreateChannelOptions(
                    publisherConfirmationsEnabled: true,
                    publisherConfirmationTrackingEnabled: true,
                    outstandingPublisherConfirmationsRateLimiter: null), // bounded by _inFlight instead
                    cancellationToken);
            }
            if (!_declared.Contains(names.Type))
            {
                // As the administrator: the publishing user may only publish (see docs/security.md).
                mismatches.Record(names, await admin.DeclareAsync(names, cancellationToken));
                _declared = [.. _declared, names.Type];
            }
            return (_channels[slot]!, _inFlight[slot]);
        }
        finally
        {
            _channelGate.Release();
        }
    }

    /// <summary>The next publish of <paramref name="type"/> declares its topology first.</summary>
    private void Forget(DataObjectType type)
    {
        HashSet<DataObjectType> declared, without;
        do
        {
            declared = _declared;
            without = [.. declared.Where(t => t != type)];
        }
        while (Interlocked.CompareExchange(ref _declared, without, declared) != declared);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            if (channel is not null)
            {
                await channel.DisposeAsync();
            }
        }
        _channelGate.Dispose();
        foreach (var semaphore in _inFlight)
        {
            semaphore.Dispose();
        }
    }

    [LoggerMessage(LogLevel.Warning, "Publishing {Count} messages (first {MessageId}, correlation {CorrelationId}) failed: {Reason}")]
    private static partial void LogPublishFailed(ILogger logger, int count, Guid? messageId, string? correlationId, string reason, Exception exception);
}
