using System.Text.RegularExpressions;
using Envio.Messaging;

namespace Envio.ApiService.Messaging;

/// <summary>Bound from <c>Envio:ErrorQueue</c>: what an operator tells the API about the error queues that it cannot see itself.</summary>
public sealed class ErrorQueueOptions
{
    public const string SectionName = "Envio:ErrorQueue";

    /// <summary>
    /// Set once a policy has raised the delivery limit of the error queues out of reach (see
    /// <see cref="ErrorQueueDeliveryLimit.PolicyLimit"/>) and the broker shows it applied: the API reads the broker over
    /// AMQP only, which shows a queue's arguments (by refusing a declaration that differs) but not the policies that
    /// apply to it.
    /// </summary>
    public bool DeliveryLimitRaisedByPolicy { get; set; }
}

/// <summary>Why looking through an error queue would spend its messages' delivery limit, and the command that stops it.</summary>
public sealed record ErrorQueueReadRefusal(string Queue, string Detail, string Command);

/// <summary>Thrown instead of reading an error queue whose reads count toward a delivery limit (see <see cref="ErrorQueueDeliveryLimit"/>).</summary>
public sealed class ErrorQueueReadRefusedException(ErrorQueueReadRefusal refusal) : Exception(refusal.Detail)
{
    public ErrorQueueReadRefusal Refusal { get; } = refusal;
}

/// <summary>
/// Listing, replaying and discarding read an error queue with <c>basic.get</c> and hand back what they do not take
/// with a <c>basic.nack</c> (requeue). RabbitMQ 4.0–4.2 count that return toward a quorum queue's delivery limit, 20
/// unless set, and drop a message over it (the error queue has no dead-letter target): an operator who lists the
/// queue 20 times loses what waits in it. Envio declares its error queues on 4.x with <c>x-delivery-limit: -1</c>
/// (no limit); a queue declared otherwise (by an Envio before that, or on 3.x before an upgrade) keeps the default.
/// The API finds that out by declaring the error queue as Envio does: the broker refuses a declaration whose
/// arguments differ (<c>PRECONDITION_FAILED</c>). Refused on 4.0–4.2, the API does not read the queue until an
/// operator has set the policy and says so (<see cref="ErrorQueueOptions.DeliveryLimitRaisedByPolicy"/>): a policy is
/// invisible over AMQP. RabbitMQ 3.x has no default limit, and from 4.3 a <c>basic.nack</c> does not count.
/// </summary>
public static class ErrorQueueDeliveryLimit
{
    /// <summary>
    /// The limit the policy sets: high, not off. RabbitMQ documents <c>-1</c> (no limit) as settable only by the
    /// queue's argument at its declaration, not by a policy; a message would have to be read this many times.
    /// </summary>
    public const int PolicyLimit = 1_000_000;

    /// <summary>The versions with a default delivery limit that count every return toward it, a nack included.</summary>
    public static bool CountsEveryReturn(BrokerVersion broker) => broker is { Major: 4, Minor: < 3 };

    /// <summary>Whether the API must declare the error queue to find out (no declaration where it could not matter).</summary>
    public static bool NeedsCheck(BrokerVersion broker, bool raisedByPolicy) => CountsEveryReturn(broker) && !raisedByPolicy;

    /// <summary>
    /// Null when reading the queue keeps its messages; otherwise why not and the command that fixes it.
    /// <paramref name="declaredAsEnvioDoes"/>: the broker took the declaration with Envio's arguments (null: not tried).
    /// </summary>
    public static ErrorQueueReadRefusal? Assess(BrokerVersion broker, QueueNames names, bool? declaredAsEnvioDoes, bool raisedByPolicy)
    {
        if (!NeedsCheck(broker, raisedByPolicy) || declaredAsEnvioDoes is not false)
        {
            return null;
        }
        return new ErrorQueueReadRefusal(names.ErrorQueue,
            $"The error queue '{names.ErrorQueue}' was declared with other arguments than Envio's ('x-delivery-limit': -1), so on "
            + $"RabbitMQ {broker} it may keep the default delivery limit (20), and every read counts toward it: listing, replaying "
            + "or discarding would in the end drop the messages in it. Raise the limit with the policy in 'command', check that the "
            + "queue shows the new delivery limit (management UI, queue page), then set "
            + $"{ErrorQueueOptions.SectionName.Replace(":", "__", StringComparison.Ordinal)}__{nameof(ErrorQueueOptions.DeliveryLimitRaisedByPolicy)}=true "
            + "for the API (a policy cannot be seen over AMQP). Nothing was read.",
            PolicyCommand(names));
    }

    /// <summary>The policy that raises the delivery limit of this type's error queue out of reach, named after the type.</summary>
    public static string PolicyCommand(QueueNames names) =>
        $"rabbitmqctl set_policy --vhost <vhost> --apply-to quorum_queues envio-error-queue-{names.Type.Name} "
        + $"'^{Regex.Escape(names.ErrorQueue)}$' '{{\"delivery-limit\":{PolicyLimit}}}'";
}
