using RabbitMQ.Client.Exceptions;

namespace Envio.ApiService.Messaging;

/// <summary>What the client throws when the broker is away (down, restarting, connection lost): a 503, not a 500.</summary>
internal static class BrokerFailures
{
    public static bool IsUnreachable(Exception exception) =>
        exception is AlreadyClosedException or OperationInterruptedException or BrokerUnreachableException or IOException;

    /// <summary>The exception or one it wraps (making a service that connects at construction wraps the client's).</summary>
    public static bool IsUnreachableWithin(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (IsUnreachable(exception))
            {
                return true;
            }
        }
        return false;
    }
}
