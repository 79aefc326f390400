using System.Collections.Concurrent;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Envio.ApiService.Messaging;

/// <summary>
/// Sends an operator's pause or resume for one type, or every type when it is null, as the next desired state
/// (<see cref="ConsumerControl"/>): it reads the kept state, publishes the next one (confirmed by the broker, under the
/// admin connection's validated user), and collects for <see cref="PublisherOptions.ConsumerConfirmationWait"/> the
/// confirmations of the consumers that applied it. Commands of one API process are serialised, so each builds on the
/// last; two API replicas sending at the same instant may give two states one sequence (the later published is kept).
/// </summary>
public sealed partial class ConsumerCommands(
    AdminConnection admin, IOptions<TopologyOptions> topology, IOptions<PublisherOptions> publisher, ILogger<ConsumerCommands> logger) : IDisposable
{
    private readonly TopologyOptions _topology = topology.Value;
    private readonly SemaphoreSlim _serial = new(1, 1);

    public async Task<ConsumerCommandResult> SendAsync(string command, DataObjectType? type, string operatorName, CancellationToken cancellationToken)
    {
        await ConsumerControl.DeclareAsync(ct => admin.CreateChannelAsync(null, ct), _topology, await admin.BrokerVersionAsync(cancellationToken), cancellationToken);
        await using var channel = await admin.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);

        // The reply queue listens before the state goes out, so no confirmation comes too early.
        var replies = ConsumerControl.PrivateQueue(_topology, "reply");
        await channel.QueueDeclareAsync(replies, durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(replies, ConsumerControl.RepliesExchange(_topology), replies, cancellationToken: cancellationToken);
        var confirmations = new ConcurrentDictionary<string, ConsumingConfirmation>(StringComparer.Ordinal);
        var listener = new AsyncEventingBasicConsumer(channel);
        listener.ReceivedAsync += (_, message) =>
        {
            if (ConsumingConfirmation.FromJson(message.Body) is { } confirmation)
            {
                confirmations.AddOrUpdate(confirmation.Consumer, confirmation, (_, known) => known.Sequence >= confirmation.Sequence ? known : confirmation);
            }
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(replies, autoAck: true, listener, cancellationToken);

        ConsumingState next;
        await _serial.WaitAsync(cancellationToken);
        try
        {
            var kept = await ConsumingState.ReadKeptAsync(channel, _topology, cancellationToken);
            next = (kept?.State ?? ConsumingState.Initial).Next(command, type is null ? DataObjectTypes.Registered.Select(t => t.Name) : [type.Name]);
            await channel.BasicPublishAsync(ConsumerControl.StateExchange(_topology), routingKey: "", mandatory: false,
                new BasicProperties
                {
                    Type = command, // what consumers of earlier builds read, with the header
                    AppId = operatorName,
                    UserId = admin.UserName, // validated by the broker: consumers know who sent it
                    ReplyTo = replies,
                    ContentType = "application/json",
                    Persistent = true,
                    Timestamp = new AmqpTimestamp(DateTimeOffset.UtcNow.ToUnixTimeSeconds()),
                    Headers = type is null ? null : new Dictionary<string, object?> { [ConsumerControl.DataObjectHeader] = type.Name },
                },
                next.ToJson(), cancellationToken);
        }
        finally
        {
            _serial.Release();
        }
        LogSent(logger, command, type?.Plural ?? "every type", operatorName, next.Sequence);

        await Task.Delay(publisher.Value.ConsumerConfirmationWait, cancellationToken);
        return new ConsumerCommandResult(next.Sequence, next.Paused,
            [.. confirmations.Values.Where(c => c.Sequence >= next.Sequence).OrderBy(c => c.Consumer, StringComparer.Ordinal)]);
    }

    public void Dispose() => _serial.Dispose();

    [LoggerMessage(LogLevel.Warning, "Audit: {Command} ({Types}) sent to the consumers by {OperatorName}: state {Sequence}.")]
    private static partial void LogSent(ILogger logger, string command, string types, string operatorName, long sequence);
}

/// <summary>The answer to a pause or resume: the state sent, and the consumers that confirmed they apply it (or a later one).</summary>
public sealed record ConsumerCommandResult(long Sequence, IReadOnlyList<string> Paused, IReadOnlyList<ConsumingConfirmation> Confirmations)
{
    public int Confirmed => Confirmations.Count;
}
