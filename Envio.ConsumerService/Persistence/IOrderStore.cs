namespace Envio.ConsumerService.Persistence;

/// <summary>Where orders end up. One implementation per database engine; the consumer does not know which.</summary>
public interface IOrderStore
{
    /// <summary>
    /// Inserts, in one transaction, every order of the batch whose id is not stored yet, with its items; orders
    /// already stored are left as they are. Returns how many orders were new. Either all of it commits or nothing.
    /// </summary>
    Task<int> InsertAsync(IReadOnlyList<ReceivedOrder> batch, CancellationToken cancellationToken);

    /// <summary>Applies the pending migrations, under a database lock so that replicas starting together take turns.</summary>
    Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>Whether the database answers at all right now (a trivial query on a fresh session); never throws for that.</summary>
    Task<bool> AnswersAsync(CancellationToken cancellationToken);
}

/// <summary>Who writes the rows (<c>received_by</c>): host and process, so replicas can be told apart.</summary>
public sealed record ConsumerIdentity(string Name)
{
    public static ConsumerIdentity Current { get; } = new($"{Environment.MachineName}/{Environment.ProcessId}");
}
