using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.ApiService.Messaging;

/// <summary>
/// Sends an operator's command (<see cref="ConsumerControl"/>) for one type, or every type when it is null, to every
/// running consumer, confirmed by the broker.
/// </summary>
public sealed partial class ConsumerCommands(AdminConnection admin, IOptions<TopologyOptions> topology, ILogger<ConsumerCommands> logger)
{
    private readonly TopologyOptions _topology = topology.Value;

    public async Task SendAsync(string command, DataObjectType? type, string operatorName, CancellationToken cancellationToken)
    {
        await using var channel = await admin.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
        await ConsumerControl.DeclareAsync(channel, _topology, cancellationToken);
        await channel.BasicPublishAsync(_topology.ControlExchange, routingKey: "", mandatory: false,
            new BasicProperties
            {
                Type = command,
                AppId = operatorName,
                Headers = type is null ? null : new Dictionary<string, object?> { [ConsumerControl.DataObjectHeader] = type.Name },
            },
            ReadOnlyMemory<byte>.Empty, cancellationToken);
        LogSent(logger, command, type?.Plural ?? "every type", operatorName);
    }

    [LoggerMessage(LogLevel.Warning, "Audit: {Command} ({Types}) sent to the consumers by {OperatorName}.")]
    private static partial void LogSent(ILogger logger, string command, string types, string operatorName);
}
