using Envio.ConsumerService.Persistence.Mapping;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// Writes one type's batches into its tables. One per type and engine, made once at start-up by
/// <see cref="IStoreWriters"/>; the consumer does not know which engine it is.
/// </summary>
public interface ITableWriter<T> where T : class
{
    /// <summary>
    /// Inserts, in one transaction, every object of the batch whose id is not stored yet, with its child rows;
    /// objects already stored are left as they are. Returns how many were new. Either all of it commits or nothing.
    /// </summary>
    Task<int> InsertAsync(IReadOnlyList<Received<T>> batch, CancellationToken cancellationToken);
}

/// <summary>An engine's writers: builds a type's SQL and row writers from its <see cref="TableMap{T}"/>, once.</summary>
public interface IStoreWriters
{
    ITableWriter<T> WriterOf<T>(TableMap<T> map) where T : class;
}

/// <summary>What the consumer asks while the database seems down (see Messaging/StoreOutage.cs).</summary>
public interface IStoreProbe
{
    /// <summary>
    /// Whether the database takes a write right now: a heartbeat row written and committed on a fresh session (a
    /// database that answers a query may still refuse every write: read-only, out of disk, its log full). Never throws
    /// for that.
    /// </summary>
    Task<bool> TakesWritesAsync(CancellationToken cancellationToken);
}

/// <summary>What runs before the consumer takes its first message (see <see cref="DatabaseMigrator"/>).</summary>
public interface IStoreMigrator
{
    /// <summary>Applies the pending migrations, under a database lock so that replicas starting together take turns.</summary>
    Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>
    /// When the runtime identity is not the one that migrates (<see cref="StoreSettings.OwnerConnectionString"/>),
    /// grants it what writing needs and nothing more: select and insert on <paramref name="tables"/>, the heartbeat's
    /// row, and on SQL Server the table types the batches travel in. No update or delete of stored objects, no DDL.
    /// </summary>
    Task GrantWritingAsync(IReadOnlyList<TableShape> tables, CancellationToken cancellationToken);

    /// <summary>
    /// What the database lacks for the tables <paramref name="expected"/> describes (a missing table or column, a
    /// wrong type or nullability, a text column narrower than its property allows, a missing table type), each
    /// naming the table and column; empty when it has everything.
    /// </summary>
    Task<IReadOnlyList<string>> SchemaProblemsAsync(IReadOnlyList<TableShape> expected, CancellationToken cancellationToken);
}

/// <summary>One table as a type's map expects it; <see cref="RowType"/> names the SQL Server table type its rows travel in.</summary>
public sealed record TableShape(string Table, IReadOnlyList<ColumnShape> Columns, string RowType, IReadOnlyList<ColumnShape> RowTypeColumns);

/// <summary>Who writes the rows (<c>received_by</c>): host and process, so replicas can be told apart.</summary>
public sealed record ConsumerIdentity(string Name)
{
    public static ConsumerIdentity Current { get; } = new($"{Environment.MachineName}/{Environment.ProcessId}");
}
