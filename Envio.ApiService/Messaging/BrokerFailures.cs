using RabbitMQ.Client.Exceptions;

namespace Envio.ApiService.Messaging;

/// <summary>What the client throws when the broker is away (down, restarting, connection lost): a 503, not a 500.</summary>
internal static class BrokerFailures
{
    public static bool IsUnreachable(Exception exception) =>
        exception is AlreadyClosedException or OperationInterruptedException or BrokerUnreachableException or IOException;
}
