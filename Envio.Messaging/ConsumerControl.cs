using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.Messaging;

/// <summary>
/// Operators' commands to the consumers, kept as desired state. The API publishes the whole state (a
/// <see cref="ConsumingState"/>: a sequence number and the paused types) to <see cref="StateExchange"/>, which keeps it
/// in <see cref="StateQueue"/> (durable, one message: the newest) and passes it on to
/// <see cref="TopologyOptions.ControlExchange"/> (a fanout), where every running consumer hears it on a queue of its own.
/// Consumers read the kept state at start, after every recovery and periodically, so a command missed while a
/// connection recovered, a restart and a new replica all end in the same state. Each consumer that applied a state
/// answers to its <c>reply-to</c> through <see cref="RepliesExchange"/>. The message's <c>type</c> and
/// <see cref="DataObjectHeader"/> still say the command itself, as consumers of earlier builds read it; commands of
/// earlier APIs (that and no body) go to the control exchange only and still pause and resume.
/// </summary>
public static class ConsumerControl
{
    /// <summary>Stop taking deliveries: finish what was delivered, take nothing more.</summary>
    public const string Pause = "envio.consumer.pause";

    /// <summary>Take deliveries again.</summary>
    public const string Resume = "envio.consumer.resume";

    /// <summary>The name of the type of data object a command applies to (<c>order</c>); absent, every type.</summary>
    public const string DataObjectHeader = "envio-data-object";

    /// <summary>Where the API publishes a state: kept in <see cref="StateQueue"/>, passed on to the control exchange.</summary>
    public static string StateExchange(TopologyOptions options) => options.ControlExchange + ".state";

    /// <summary>The kept state: durable, at most one message (the newest; a publish drops the older from its head).</summary>
    public static string StateQueue(TopologyOptions options) => options.ControlExchange + ".state";

    /// <summary>A direct exchange: a consumer's confirmation goes to the queue named by the command's <c>reply-to</c>.</summary>
    public static string RepliesExchange(TopologyOptions options) => options.ControlExchange + ".replies";

    /// <summary>
    /// A name for a queue of one consumer's (<paramref name="purpose"/> <c>consumer</c>) or one command's own, under the
    /// control exchange's name: the consumer's broker user may declare <c>….control.consumer.*</c> only.
    /// </summary>
    public static string PrivateQueue(TopologyOptions options, string purpose) => $"{options.ControlExchange}.{purpose}.{Guid.NewGuid():N}";

    /// <summary>
    /// Declares the control exchange, the state exchange and queue and the replies exchange. The state queue is
    /// declared passively first and created only when absent (a queue is never declared again with other arguments).
    /// </summary>
    public static async Task DeclareAsync(Func<CancellationToken, Task<IChannel>> openChannel, TopologyOptions options, BrokerVersion broker,
        CancellationToken cancellationToken)
    {
        try
        {
            await using var channel = await openChannel(cancellationToken);
            await channel.ExchangeDeclareAsync(options.ControlExchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            await channel.ExchangeDeclareAsync(StateExchange(options), ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            await channel.ExchangeDeclareAsync(RepliesExchange(options), ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            await channel.ExchangeBindAsync(options.ControlExchange, StateExchange(options), routingKey: "", cancellationToken: cancellationToken);
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.AccessRefused)
        {
            // A user that may only use these names (the consumer's): the administrator declares them (the API does
            // when it starts). They must exist; a missing one is a NOT_FOUND here, and the caller tries again.
            await using var channel = await openChannel(cancellationToken);
            foreach (var exchange in new[] { options.ControlExchange, StateExchange(options), RepliesExchange(options) })
            {
                await channel.ExchangeDeclarePassiveAsync(exchange, cancellationToken);
            }
            await channel.QueueDeclarePassiveAsync(StateQueue(options), cancellationToken);
            return;
        }
        if (!await StateQueueExistsAsync(openChannel, options, cancellationToken))
        {
            await using var channel = await openChannel(cancellationToken);
            await channel.QueueDeclareAsync(StateQueue(options), durable: true, exclusive: false, autoDelete: false,
                arguments: StateQueueArguments(options, broker), cancellationToken: cancellationToken);
        }
        await using (var channel = await openChannel(cancellationToken))
        {
            await channel.QueueBindAsync(StateQueue(options), StateExchange(options), routingKey: "", cancellationToken: cancellationToken);
        }
    }

    /// <summary>
    /// One message, the newest (drop-head), replicated like the work queues. Reading it is a basic.get handed back,
    /// which counts as a delivery: on RabbitMQ 4.x a quorum queue's default limit (20) would drop it, so it is turned off.
    /// </summary>
    public static Dictionary<string, object?> StateQueueArguments(TopologyOptions options, BrokerVersion broker)
    {
        var arguments = new Dictionary<string, object?> { ["x-max-length"] = 1, ["x-overflow"] = "drop-head" };
        if (string.Equals(options.QueueType.Trim(), "quorum", StringComparison.OrdinalIgnoreCase))
        {
            arguments["x-queue-type"] = "quorum";
            if (options.QuorumInitialGroupSize is { } groupSize)
            {
                arguments["x-quorum-initial-group-size"] = groupSize;
            }
            if (broker.HasDefaultDeliveryLimit)
            {
                arguments["x-delivery-limit"] = -1;
            }
        }
        return arguments;
    }

    private static async Task<bool> StateQueueExistsAsync(Func<CancellationToken, Task<IChannel>> openChannel, TopologyOptions options, CancellationToken cancellationToken)
    {
        try
        {
            await using var channel = await openChannel(cancellationToken);
            await channel.QueueDeclarePassiveAsync(StateQueue(options), cancellationToken);
            return true;
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.NotFound)
        {
            return false;
        }
    }
}
