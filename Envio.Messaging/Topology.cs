using System.Text.RegularExpressions;
using Envio.Contracts.DataObjects;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.Messaging;

/// <summary>
/// The shape of every type's exchanges and queues, bound from <c>Envio:Topology</c>; their names come from
/// <see cref="NamesOf"/>. The names under this section's top level (<see cref="Exchange"/>, <see cref="Queue"/>, …) are
/// the order's: they predate other types, and deployed brokers hold them.
/// </summary>
public sealed class TopologyOptions
{
    public const string SectionName = "Envio:Topology";

    /// <summary>The type the top-level names below belong to.</summary>
    public const string OrderType = "order";

    /// <summary>Orders: the durable direct exchange the API publishes to.</summary>
    public string Exchange { get; set; } = "envio.orders";

    /// <summary>Orders: the work queue the consumers read.</summary>
    public string Queue { get; set; } = "envio.orders";

    public string RoutingKey { get; set; } = OrderType;

    /// <summary>Orders: where messages that cannot succeed go, with the reason in their headers.</summary>
    public string ErrorExchange { get; set; } = "envio.orders.error";

    public string ErrorQueue { get; set; } = "envio.orders.error";

    /// <summary>Orders: where messages wait before they are tried again (see <see cref="RetryDelays"/>).</summary>
    public string RetryExchange { get; set; } = "envio.orders.retry";

    /// <summary>Orders: the retry queue of one step (see <see cref="QueueNames.RetryQueue"/>).</summary>
    public string RetryQueue(TimeSpan delay) => $"{Queue}.retry.{(long)delay.TotalMilliseconds}ms";

    /// <summary>
    /// A fanout exchange for operators' commands to every running consumer (pause, resume; see
    /// <see cref="ConsumerControl"/>), for every type. It carries no data objects.
    /// </summary>
    public string ControlExchange { get; set; } = "envio.orders.control";

    /// <summary>
    /// The broker user whose commands the consumers obey (the API's admin connection's user). Commands carry the
    /// broker-validated <c>user_id</c>; set, a consumer ignores any other sender's with a warning. Unset: every sender's.
    /// </summary>
    public string? ControlUser { get; set; }

    /// <summary>
    /// The waits between attempts after a transient failure: one retry queue per step, whose TTL sends the message
    /// back to the work queue. After the last step a message goes to the error queue. Default 5 s, 30 s, 5 min.
    /// </summary>
    public TimeSpan[]? RetryDelays { get; set; }

    public IReadOnlyList<TimeSpan> EffectiveRetryDelays => RetryDelays is { Length: > 0 } delays
        ? delays
        : [TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5)];

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
    /// survives the loss of any minority of nodes. Unset: the broker's default. Both services must be given the same
    /// value (the AppHost and deploy/compose do): the broker refuses a queue declared again with another one
    /// (PRECONDITION_FAILED), so existing queues grow onto new nodes with <c>rabbitmq-queues grow</c> instead.
    /// </summary>
    public int? QuorumInitialGroupSize { get; set; }

    /// <summary>
    /// Optional bound on each work queue's backlog. When it is full the broker refuses (nacks) new messages and the
    /// API answers 503 instead of letting the backlog grow without limit. Unset: unbounded.
    /// </summary>
    public int? MaxLength { get; set; }

    /// <summary>The names of one type's exchanges and queues: from its plural, or for orders from the settings above.</summary>
    public QueueNames NamesOf(DataObjectType type) => type.Name == OrderType
        ? new QueueNames(type, Exchange, Queue, RoutingKey, ErrorExchange, ErrorQueue, RetryExchange, this)
        : QueueNames.Of(type) with { Options = this };
}

/// <summary>
/// One type's exchanges and queues, named from its plural: <c>envio.{plural}</c> (exchange and work queue, routing
/// key the type's name), <c>envio.{plural}.error</c>, <c>envio.{plural}.retry</c> and its queues
/// <c>envio.{plural}.retry.{delay}ms</c>. Every place that names a queue (the services, the AppHost's queue depths and
/// broker permissions, the tests) asks here.
/// </summary>
public sealed record QueueNames(
    DataObjectType Type, string Exchange, string Queue, string RoutingKey, string ErrorExchange, string ErrorQueue, string RetryExchange,
    TopologyOptions Options)
{
    public const string Prefix = "envio.";

    public static QueueNames Of(DataObjectType type) => Of(type, new TopologyOptions());

    private static QueueNames Of(DataObjectType type, TopologyOptions options)
    {
        var root = Prefix + type.Plural;
        return new QueueNames(type, root, root, type.Name, root + ".error", root + ".error", root + ".retry", options);
    }

    /// <summary>The retry queue of one step; its name carries its delay, so changing a delay makes a new queue.</summary>
    public string RetryQueue(TimeSpan delay) => $"{Queue}.retry.{(long)delay.TotalMilliseconds}ms";

    /// <summary>The retry queues, one per step of <see cref="TopologyOptions.EffectiveRetryDelays"/>.</summary>
    public IEnumerable<string> RetryQueues => Options.EffectiveRetryDelays.Select(RetryQueue);

    /// <summary>Every queue of the type: work, error, then the retry queues.</summary>
    public IEnumerable<string> AllQueues => new[] { Queue, ErrorQueue }.Concat(RetryQueues);
}

/// <summary>A queue found declared with other arguments than the settings give: used as it is (see <see cref="Topology.DeclareAsync"/>).</summary>
/// <param name="Queue">The queue's name.</param>
/// <param name="Description">The broker's words, and how an operator resolves the difference.</param>
public sealed record QueueMismatch(string Queue, string Description);

/// <summary>What declaring a type's names found: the queues that exist with other arguments, if any.</summary>
public sealed record TopologyDeclaration(IReadOnlyList<QueueMismatch> Mismatches);

/// <summary>
/// Declares one type's topology, identically from every service: declarations are idempotent, so each service
/// declares what it uses when it starts using it.
/// </summary>
public static class Topology
{
    /// <summary>
    /// Declares the type's exchanges, queues and bindings. The arguments depend on the broker's version
    /// (<see cref="BrokerVersion"/>), which every service sees alike, so the declarations stay identical. A queue that
    /// exists with other arguments (a setting changed since it was created, or services of a rolling deploy that
    /// disagree) is used as it is and returned as a <see cref="QueueMismatch"/>: the broker keeps a queue's arguments for
    /// its life and refuses a declaration that differs, and refusing to work over it would turn every publish into a
    /// 503 and every consumer start into a failure.
    /// </summary>
    public static async Task<TopologyDeclaration> DeclareAsync(IConnection connection, QueueNames names, CancellationToken cancellationToken)
    {
        var options = names.Options;
        var queueType = QueueTypeOf(options);
        var broker = BrokerVersion.Of(connection);
        var workQueueArguments = QueueArguments(options, queueType, deadLetterExchange: names.ErrorExchange);
        if (queueType == "quorum")
        {
            workQueueArguments["x-delivery-limit"] = options.DeliveryLimit;
        }
        if (options.MaxLength is { } maxLength)
        {
            workQueueArguments["x-max-length"] = maxLength;
        }

        try
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            await channel.ExchangeDeclareAsync(names.ErrorExchange, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            await channel.ExchangeDeclareAsync(names.Exchange, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: cancellationToken);
            await channel.ExchangeDeclareAsync(names.RetryExchange, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.AccessRefused)
        {
            // A user that may only use the names, not declare them (the consumer's: see BrokerPermissions in the
            // AppHost). The administrator declares them (the API does at its first publish of the type): they must
            // exist, and a queue that is missing is a NOT_FOUND here, which the caller handles as any broker fault.
            await VerifyAsync(connection, names, cancellationToken);
            return new TopologyDeclaration([]);
        }

        var mismatches = new List<QueueMismatch>();
        await DeclareQueueAsync(connection, names, names.ErrorQueue, ErrorQueueArguments(options, broker), mismatches, cancellationToken);
        await DeclareQueueAsync(connection, names, names.Queue, workQueueArguments, mismatches, cancellationToken);
        foreach (var delay in options.EffectiveRetryDelays)
        {
            var arguments = QueueArguments(options, queueType, deadLetterExchange: names.Exchange);
            arguments["x-dead-letter-routing-key"] = names.RoutingKey;
            arguments["x-message-ttl"] = (long)delay.TotalMilliseconds;
            await DeclareQueueAsync(connection, names, names.RetryQueue(delay), arguments, mismatches, cancellationToken);
        }

        await using (var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken))
        {
            await channel.QueueBindAsync(names.ErrorQueue, names.ErrorExchange, routingKey: "", cancellationToken: cancellationToken);
            await channel.QueueBindAsync(names.Queue, names.Exchange, names.RoutingKey, cancellationToken: cancellationToken);
            foreach (var retryQueue in names.RetryQueues)
            {
                await channel.QueueBindAsync(retryQueue, names.RetryExchange, retryQueue, cancellationToken: cancellationToken);
            }
        }
        return new TopologyDeclaration(mismatches);
    }

    /// <summary>Checks, without declaring anything (a passive declaration needs no permission), that the type's names exist.</summary>
    private static async Task VerifyAsync(IConnection connection, QueueNames names, CancellationToken cancellationToken)
    {
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        foreach (var exchange in new[] { names.ErrorExchange, names.Exchange, names.RetryExchange })
        {
            await channel.ExchangeDeclarePassiveAsync(exchange, cancellationToken);
        }
        foreach (var queue in names.AllQueues)
        {
            await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
        }
    }

    /// <summary>
    /// The error queue's arguments. It keeps every message until an operator acts: no TTL, no length limit, and no
    /// delivery limit. RabbitMQ 4.x gives quorum queues a default delivery limit of 20 and drops a message over it
    /// that has no dead-letter target (4.0–4.2 count every return, reads included), so there the limit is turned off
    /// with -1. RabbitMQ 3.x has no default limit, and reads -1 as "over the limit at the first return" (it would
    /// drop a message the first time the operator's listing hands it back), so there the argument stays unset.
    /// </summary>
    public static Dictionary<string, object?> ErrorQueueArguments(TopologyOptions options, BrokerVersion broker)
    {
        var queueType = QueueTypeOf(options);
        var arguments = QueueArguments(options, queueType, deadLetterExchange: null);
        if (queueType == "quorum" && broker.HasDefaultDeliveryLimit)
        {
            arguments["x-delivery-limit"] = -1;
        }
        return arguments;
    }

    private static string QueueTypeOf(TopologyOptions options)
    {
        var queueType = options.QueueType.Trim().ToLowerInvariant();
        return queueType is "quorum" or "classic"
            ? queueType
            : throw new InvalidOperationException($"{TopologyOptions.SectionName}:QueueType must be 'quorum' or 'classic', not '{options.QueueType}'.");
    }

    /// <summary>
    /// Creates the queue with these arguments when it is absent. A passive declaration alone cannot see a queue's
    /// arguments, so the queue is declared with them: a refusal (PRECONDITION_FAILED, which closes the channel) on a
    /// queue that exists means it was declared otherwise, and it is used as it is. A refusal of a queue that does not
    /// exist (arguments the broker rejects) is thrown.
    /// </summary>
    private static async Task DeclareQueueAsync(IConnection connection, QueueNames names, string queue, Dictionary<string, object?> arguments,
        List<QueueMismatch> mismatches, CancellationToken cancellationToken)
    {
        try
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: arguments, cancellationToken: cancellationToken);
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.PreconditionFailed)
        {
            if (!await ExistsAsync(connection, queue, cancellationToken))
            {
                throw;
            }
            mismatches.Add(new QueueMismatch(queue, Mismatch(names, queue, e.ShutdownReason.ReplyText)));
        }
    }

    private static async Task<bool> ExistsAsync(IConnection connection, string queue, CancellationToken cancellationToken)
    {
        try
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            await channel.QueueDeclarePassiveAsync(queue, cancellationToken);
            return true;
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == Constants.NotFound)
        {
            return false;
        }
    }

    /// <summary>What differs, in the broker's words, and the fix: a policy where one can do it, else a new queue.</summary>
    private static string Mismatch(QueueNames names, string queue, string brokerSays)
    {
        var policy = $"rabbitmqctl set_policy --vhost <vhost> --apply-to queues {queue} '^{Regex.Escape(queue)}$'";
        return queue == names.ErrorQueue && brokerSays.Contains("x-delivery-limit", StringComparison.Ordinal)
            // Declared by an earlier Envio without the argument; the queue holds what operators have not acted on yet.
            // A policy cannot say -1 (RabbitMQ reads it only as a queue argument), so a limit no operator reaches.
            ? $"The error queue '{queue}' was created without 'x-delivery-limit: -1', so RabbitMQ 4.x may drop a message in it "
                + $"after 20 returns ({brokerSays}). It is used as it is. Raise the limit out of reach with a policy: {policy} '{{\"delivery-limit\":1000000}}'."
            : $"The queue '{queue}' exists with other arguments than Envio's settings declare ({brokerSays}). It is used as it is. "
                + "A policy can lower a length or delivery limit on the live queue (the broker applies the smaller of the queue's "
                + $"argument and the policy's), e.g. {policy} '{{\"max-length\":100000}}'; any other change (a higher limit, the "
                + "queue type, the initial group size) takes the queue drained, deleted and declared again, or the setting put back.";
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
