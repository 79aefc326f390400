using RabbitMQ.Client;

namespace Envio.Contracts.Messaging;

/// <summary>Names and shape of Envio's exchanges and queues, bound from <c>Envio:Topology</c>.</summary>
public sealed class TopologyOptions
{
    public const string SectionName = "Envio:Topology";

    /// <summary>The durable direct exchange the API publishes orders to.</summary>
    public string Exchange { get; set; } = "envio.orders";

    /// <summary>The work queue the consumers read.</summary>
    public string Queue { get; set; } = "envio.orders";

    public string RoutingKey { get; set; } = "order";

    /// <summary>Where messages that cannot succeed go, with the reason in their headers.</summary>
    public string ErrorExchange { get; set; } = "envio.orders.error";

    public string ErrorQueue { get; set; } = "envio.orders.error";

    /// <summary><c>quorum</c> (replicated, the default) or <c>classic</c>.</summary>
    public string QueueType { get; set; } = "quorum";

    /// <summary>
    /// Quorum queues only: after this many deliveries without an ack (a message that keeps killing its consumer),
    /// the broker dead-letters the message to the error exchange instead of redelivering it forever.
    /// </summary>
    public int DeliveryLimit { get; set; } = 20;

    /// <summary>
    /// Optional bound on the work queue's backlog. When it is full the broker refuses (nacks) new messages and the
    /// API answers 503 instead of letting the backlog grow without limit. Unset: unbounded.
    /// </summary>
    public int? MaxLength { get; set; }
}

/// <summary>
/// Declares the topology, identically from every service (a mismatch in queue arguments makes the broker close the
/// channel): declarations are idempotent, so each service declares it at start-up.
/// </summary>
public static class Topology
{
    public static async Task DeclareAsync(IChannel channel, TopologyOptions options, CancellationToken cancellationToken)
    {
        var queueType = options.QueueType.Trim().ToLowerInvariant();
        if (queueType is not ("quorum" or "classic"))
        {
            throw new InvalidOperationException($"{TopologyOptions.SectionName}:QueueType must be 'quorum' or 'classic', not '{options.QueueType}'.");
        }

        await channel.ExchangeDeclareAsync(options.ErrorExchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(options.ErrorQueue, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = queueType }, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(options.ErrorQueue, options.ErrorExchange, routingKey: "", cancellationToken: cancellationToken);

        var workQueueArguments = new Dictionary<string, object?>
        {
            ["x-queue-type"] = queueType,
            ["x-dead-letter-exchange"] = options.ErrorExchange,
        };
        if (queueType == "quorum")
        {
            workQueueArguments["x-delivery-limit"] = options.DeliveryLimit;
        }
        if (options.MaxLength is { } maxLength)
        {
            workQueueArguments["x-max-length"] = maxLength;
            workQueueArguments["x-overflow"] = "reject-publish";
        }
        await channel.ExchangeDeclareAsync(options.Exchange, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(options.Queue, durable: true, exclusive: false, autoDelete: false,
            arguments: workQueueArguments, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(options.Queue, options.Exchange, options.RoutingKey, cancellationToken: cancellationToken);
    }
}
