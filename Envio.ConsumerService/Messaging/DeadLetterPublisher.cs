using System.Globalization;
using Envio.Contracts.Messaging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Moves a message that cannot succeed to the error queue: the original body and properties, plus why, when, where
/// and by whom it failed. The publish is confirmed before the caller acknowledges the original; in the other order a
/// crash in between would lose the message.
/// </summary>
public sealed class DeadLetterPublisher(IConnection connection, IOptions<TopologyOptions> topology) : IAsyncDisposable
{
    public const string ReasonHeader = "envio-error-reason";
    public const string ExceptionHeader = "envio-error-exception";
    public const string FailedAtHeader = "envio-failed-at";
    public const string OriginalQueueHeader = "envio-original-queue";
    public const string ConsumerHeader = "envio-consumer";

    private readonly SemaphoreSlim _gate = new(1, 1);
    private IChannel? _channel;

    public async Task PublishAsync(Delivery delivery, string reason, Exception? exception, CancellationToken cancellationToken)
    {
        var properties = new BasicProperties(delivery.Properties)
        {
            Persistent = true,
            Headers = new Dictionary<string, object?>(delivery.Properties.Headers ?? new Dictionary<string, object?>())
            {
                [ReasonHeader] = reason,
                [ExceptionHeader] = exception?.GetType().FullName,
                [FailedAtHeader] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
                [OriginalQueueHeader] = topology.Value.Queue,
                [ConsumerHeader] = Environment.MachineName,
            },
        };

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
            await _channel.BasicPublishAsync(topology.Value.ErrorExchange, routingKey: "", mandatory: true, properties,
                delivery.Body, cancellationToken);
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
