using RabbitMQ.Client;

namespace Envio.Messaging;

/// <summary>
/// Operators' commands to the consumers: one message on <see cref="TopologyOptions.ControlExchange"/> (a fanout),
/// its <c>type</c> the command and its <see cref="DataObjectHeader"/> the type of data object it applies to (absent:
/// every type), reaches every consumer process running at that moment. A consumer that starts later consumes: a pause
/// lasts until a resume or the process's restart.
/// </summary>
public static class ConsumerControl
{
    /// <summary>Stop taking deliveries: finish the batch in hand, hand the rest back to the queue.</summary>
    public const string Pause = "envio.consumer.pause";

    /// <summary>Take deliveries again.</summary>
    public const string Resume = "envio.consumer.resume";

    /// <summary>The name of the type of data object a command applies to (<c>order</c>); absent, every type.</summary>
    public const string DataObjectHeader = "envio-data-object";

    public static Task DeclareAsync(IChannel channel, TopologyOptions options, CancellationToken cancellationToken) =>
        channel.ExchangeDeclareAsync(options.ControlExchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
}
