using System.Globalization;
using Envio.Contracts.Messaging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Moves a message that failed: to a retry queue (a transient failure, with attempts left) or to the error queue (a
/// permanent failure, or no attempts left), with the original body and properties plus why, when, where and by whom
/// it failed. The publish is confirmed before the caller acknowledges the original: in the other order a crash in
/// between would lose the message.
/// </summary>
public sealed class FailurePublisher(IConnection connection, IOptions<TopologyOptions> topology) : IAsyncDisposable
{
    private readonly TopologyOptions _topology = topology.Value;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IChannel? _channel;

    /// <summary>The failed attempts recorded on a message.</summary>
    public static int AttemptsOf(IReadOnlyBasicProperties properties) =>
        properties.Headers?.TryGetValue(FailureHeaders.Attempts, out var value) == true && value is int attempts ? attempts : 0;

    /// <summary>
    /// After a transient failure: back to the work queue after the next delay, or to the error queue once every
    /// delay was tried. Returns true when the message will be tried again.
    /// </summary>
    public async Task<bool> RetryLaterAsync(Delivery delivery, string reason, Exception exception, CancellationToken cancellationToken)
    {
        var attempts = AttemptsOf(delivery.Properties) + 1;
        var delays = _topology.EffectiveRetryDelays;
        if (attempts > delays.Count)
        {
            await DeadLetterAsync(delivery, $"Gave up after {attempts} attempts: {reason}", exception, cancellationToken);
            return false;
        }
        var queue = _topology.RetryQueue(delays[attempts - 1]);
        await PublishAsync(_topology.RetryExchange, queue, delivery, Headers(delivery, attempts, reason, exception), cancellationToken);
        return true;
    }

    /// <summary>To the error queue, for an operator to read why, fix the cause and replay.</summary>
    public Task DeadLetterAsync(Delivery delivery, string reason, Exception? exception, CancellationToken cancellationToken) =>
        PublishAsync(_topology.ErrorExchange, routingKey: "", delivery,
            Headers(delivery, AttemptsOf(delivery.Properties) + 1, reason, exception), cancellationToken);

    private Dictionary<string, object?> Headers(Delivery delivery, int attempts, string reason, Exception? exception) =>
        new(delivery.Properties.Headers ?? new Dictionary<string, object?>())
        {
            [FailureHeaders.Attempts] = attempts,
            [FailureHeaders.Reason] = reason,
            [FailureHeaders.Exception] = exception is null ? null : $"{exception.GetType().FullName}: {exception.Message}",
            [FailureHeaders.FailedAt] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            [FailureHeaders.OriginalQueue] = _topology.Queue,
            [FailureHeaders.Consumer] = Environment.MachineName,
        };

    private async Task PublishAsync(
        string exchange, string routingKey, Delivery delivery, Dictionary<string, object?> headers, CancellationToken cancellationToken)
    {
        var properties = new BasicProperties(delivery.Properties) { Persistent = true, Headers = headers };
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_channel is not { IsOpen: true })
            {
                if (_channel is not null)
                {
                    await _channel.DisposeAsync();
                }
                _channel = await connection.CreateChannelAsync(
                    new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true),
                    cancellationToken);
            }
            await _channel.BasicPublishAsync(exchange, routingKey, mandatory: true, properties, delivery.Body, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_channel is not null)
        {
            await _channel.DisposeAsync();
        }
        _gate.Dispose();
    }
}
