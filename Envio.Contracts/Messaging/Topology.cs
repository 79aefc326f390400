using System.Text.RegularExpressions;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

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

    /// <summary>
    /// A fanout exchange for operators' commands to every running consumer (pause, resume; see
    /// <see cref="ConsumerControl"/>). It carries no orders.
    /// </summary>
    public string ControlExchange { get; set; } = "envio.orders.control";

    /// <summary>Where messages wait before they are tried again (see <see cref="RetryDelays"/>).</summary>
    public string RetryExchange { get; set; } = "envio.orders.retry";

    /// <summary>
    /// The waits between attempts after a transient failure: one retry queue per step, whose TTL sends the message
    /// back to the work queue. After the last step a message goes to the error queue. Default 5 s, 30 s, 5 min.
    /// </summary>
    public TimeSpan[]? RetryDelays { get; set; }

    public IReadOnlyList<TimeSpan> EffectiveRetryDelays => RetryDelays is { Length: > 0 } delays
        ? delays
        : [TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5)];

    /// <summary>The retry queue of one step; its name carries its delay, so changing a delay makes a new queue.</summary>
    public string RetryQueue(TimeSpan delay) => $"{Queue}.retry.{(long)delay.TotalMilliseconds}ms";

    /// <summary><c>quorum</c> (replicated, the default) or <c>classic</c>.</summary>
    public string QueueType { get; set; } = "quorum";

    /// <summary>
    /// Quorum queues only: after this many deliveries without an ack (a message that keeps killing its consumer),
    /// the broker dead-letters the message to the error exchange instead of redelivering it forever.
    /// </summary>
    public int DeliveryLimit { get; set; } = 20;

    /// <summary>
    /// Quorum queues only: on how many cluster nodes each queue (work, retry, error) gets a member when it is first
    /// declared (<c>x-quorum-initial-group-size</c>). Set it to the cluster's size (3 on 3 nodes) so that every queue
    /// survives the loss of any minority of nodes; a larger number than there are nodes means every node. Unset: the
    /// broker's default (RabbitMQ's <c>quorum_cluster_size</c>). Both services must be given the same value (the
    /// AppHost and deploy/compose do). The broker compares it when a queue is declared again: a queue that exists
    /// without it (or with another size) makes the declaration fail (PRECONDITION_FAILED), so set it when the queues
    /// are created, and grow existing queues onto new nodes with <c>rabbitmq-queues grow</c> instead.
    /// </summary>
    public int? QuorumInitialGroupSize { get; set; }

    /// <summary>
    /// Optional bound on the work queue's backlog. When it is full the broker refuses (nacks) new messages and the
    /// API answers 503 instead of letting the backlog grow without limit. Unset: unbounded.
    /// </summary>
    public int? MaxLength { get; set; }
}

/// <summary>What declaring found about the error queue's safety net (see <see cref="Topology.DeclareAsync"/>).</summary>
/// <param name="ErrorQueueLimitWarning">
/// Set when the error queue already existed with other arguments than Envio declares today (created by an earlier
/// Envio on RabbitMQ 4.x): the broker's default delivery limit may still apply to it; the text says how to remove it.
/// </param>
public sealed record TopologyDeclaration(string? ErrorQueueLimitWarning);

/// <summary>
/// Declares the topology, identically from every service (a mismatch in queue arguments makes the broker close the
/// channel): declarations are idempotent, so each service declares it at start-up.
/// </summary>
public static class Topology
{
    /// <summary>
    /// Declares every exchange, queue and binding on a channel of its own. The arguments depend on the broker's
    /// version (<see cref="BrokerVersion"/>), which every service sees alike, so the declarations stay identical.
    /// </summary>
    public static async Task<TopologyDeclaration> DeclareAsync(IConnection connection, TopologyOptions options, CancellationToken cancellationToken)
    {
        var queueType = options.QueueType.Trim().ToLowerInvariant();
        if (queueType is not ("quorum" or "classic"))
        {
            throw new InvalidOperationException($"{TopologyOptions.SectionName}:QueueType must be 'quorum' or 'classic', not '{options.QueueType}'.");
        }
        var broker = BrokerVersion.Of(connection);
        var warning = await DeclareErrorQueueAsync(connection, options, queueType, broker, cancellationToken);

        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        var workQueueArguments = QueueArguments(options, queueType, deadLetterExchange: options.ErrorExchange);
        if (queueType == "quorum")
        {
            workQueueArguments["x-delivery-limit"] = options.DeliveryLimit;
        }
        if (options.MaxLength is { } maxLength)
        {
            workQueueArguments["x-max-length"] = maxLength;
        }
        await channel.ExchangeDeclareAsync(options.Exchange, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(options.Queue, durable: true, exclusive: false, autoDelete: false,
            arguments: workQueueArguments, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(options.Queue, options.Exchange, options.RoutingKey, cancellationToken: cancellationToken);

        await channel.ExchangeDeclareAsync(options.RetryExchange, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        foreach (var delay in options.EffectiveRetryDelays)
        {
            var retryQueue = options.RetryQueue(delay);
            var arguments = QueueArguments(options, queueType, deadLetterExchange: options.Exchange);
            arguments["x-dead-letter-routing-key"] = options.RoutingKey;
            arguments["x-message-ttl"] = (long)delay.TotalMilliseconds;
            await channel.QueueDeclareAsync(retryQueue, durable: true, exclusive: false, autoDelete: false,
                arguments: arguments, cancellationToken: cancellationToken);
            await channel.QueueBindAsync(retryQueue, options.RetryExchange, retryQueue, cancellationToken: cancellationToken);
        }
        return new TopologyDeclaration(warning);
    }

    /// <summary>
    /// The error queue's arguments. It keeps every message until an operator acts: no TTL, no length limit, and no
    /// delivery limit. RabbitMQ 4.x gives quorum queues a default delivery limit of 20 and drops a message over it
    /// that has no dead-letter target (4.0–4.2 count every return, reads included), so there the limit is turned off
    /// with -1. RabbitMQ 3.x has no default limit, and reads -1 as "over the limit at the first return" (it would
    /// drop a message the first time the operator's listing hands it back), so there the argument stays unset.
    /// </summary>
    public static Dictionary<string, object?> ErrorQueueArguments(TopologyOptions options, string queueType, BrokerVersion broker)
    {
        var arguments = QueueArguments(options, queueType, deadLetterExchange: null);
        if (queueType == "quorum" && broker.HasDefaultDeliveryLimit)
        {
            arguments["x-delivery-limit"] = -1;
        }
        return arguments;
    }

    private static async Task<string?> DeclareErrorQueueAsync(
        IConnection connection, TopologyOptions options, string queueType, BrokerVersion broker, CancellationToken cancellationToken)
    {
        string? warning = null;
        await using (var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken))
        {
            await channel.ExchangeDeclareAsync(options.ErrorExchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            try
            {
                await channel.QueueDeclareAsync(options.ErrorQueue, durable: true, exclusive: false, autoDelete: false,
                    arguments: ErrorQueueArguments(options, queueType, broker), cancellationToken: cancellationToken);
            }
            catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.PreconditionFailed
                && e.ShutdownReason.ReplyText.Contains("x-delivery-limit", StringComparison.Ordinal))
            {
                // Declared by an earlier Envio without the argument: the broker keeps a queue's arguments for its
                // life, and the queue holds what operators have not acted on yet, so it is used as it is, and said.
                warning = $"The error queue '{options.ErrorQueue}' was created without 'x-delivery-limit: -1', so RabbitMQ {broker} "
                    + "may drop a message in it after 20 returns. Turn the limit off with a policy: rabbitmqctl set_policy "
                    + $"--vhost <vhost> --apply-to quorum_queues envio-error-queue '^{Regex.Escape(options.ErrorQueue)}$' '{{\"delivery-limit\":-1}}'.";
            }
        }
        if (warning is not null)
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            await channel.QueueDeclarePassiveAsync(options.ErrorQueue, cancellationToken);
        }
        await using (var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken))
        {
            await channel.QueueBindAsync(options.ErrorQueue, options.ErrorExchange, routingKey: "", cancellationToken: cancellationToken);
        }
        return warning;
    }

    /// <summary>
    /// A quorum queue that dead-letters does it at-least-once (the message leaves only once the target confirmed),
    /// which the broker allows only with reject-publish overflow; classic queues dead-letter at most once.
    /// </summary>
    private static Dictionary<string, object?> QueueArguments(TopologyOptions options, string queueType, string? deadLetterExchange)
    {
        var arguments = new Dictionary<string, object?> { ["x-queue-type"] = queueType };
        if (queueType == "quorum" && options.QuorumInitialGroupSize is { } groupSize)
        {
            arguments["x-quorum-initial-group-size"] = groupSize;
        }
        if (deadLetterExchange is not null)
        {
            arguments["x-dead-letter-exchange"] = deadLetterExchange;
            if (queueType == "quorum")
            {
                arguments["x-dead-letter-strategy"] = "at-least-once";
                arguments["x-overflow"] = "reject-publish";
            }
        }
        return arguments;
    }
}
