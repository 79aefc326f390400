using System.Data;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.Security;
using Microsoft.Data.SqlClient;
using Microsoft.Data.SqlClient.Server;

namespace Envio.ConsumerService.Persistence.SqlServer;

/// <summary>
/// One type's batches into SQL Server (and Babelfish for PostgreSQL), the way PostgreSQL's writer works. The common
/// batch holds only new objects: SqlBulkCopy puts it straight into the tables, constraints checked. When one of them is
/// stored already (a redelivery, a client's retry) the primary key refuses the copy, the transaction rolls back, and
/// the batch takes the careful path (<see cref="SqlServerSql"/>). On SQL Server the key-range lock keeps two consumers
/// inserting the same new id from both passing NOT EXISTS; Babelfish accepts and ignores the hints, so there the loser
/// gets a duplicate key and the batch is tried again.
/// </summary>
internal sealed class SqlServerTableWriter<T> : ITableWriter<T> where T : class
{
    /// <summary>
    /// How often a batch is tried again when a concurrent consumer won the race for one of its ids. Each lost race
    /// means that object is now committed, so a few tries settle any realistic overlap; past them, the failure is
    /// transient like any other.
    /// </summary>
    private const int DuplicateKeyAttempts = 5;

    private readonly StoreSettings _settings;
    private readonly TableMap<T> _map;
    private readonly KeyRing _keys;
    private readonly ConsumerIdentity _identity;
    private readonly ILogger _logger;
    private readonly SqlServerSql _sql;
    private readonly RecordColumns<StoredRow<T>> _rowType;
    private readonly IChildRows[] _children;

    public SqlServerTableWriter(StoreSettings settings, TableMap<T> map, KeyRing keys, ConsumerIdentity identity, ILogger logger)
    {
        (_settings, _map, _keys, _identity, _logger) = (settings, map, keys, identity, logger);
        _sql = SqlServerSql.Of(map);
        _rowType = new RecordColumns<StoredRow<T>>([.. map.ArrivedColumns]);
        _children = [.. map.Children.Select(child => child.Accept(new ChildVisitor(keys)))];
    }

    public async Task<int> InsertAsync(IReadOnlyList<Received<T>> batch, CancellationToken cancellationToken)
    {
        var rows = _map.RowsOf(batch, _keys, _identity.Name);
        var children = _children.Select(child => child.Prepare(rows)).ToArray();
        try
        {
            var copied = await BulkCopyAsync(rows, children, cancellationToken);
            ClientConflicts.Report(_logger, _map.Type, ClientConflicts.Find(batch, ClientConflicts.OfRows(batch, rows)));
            return copied;
        }
        catch (Exception e) when (e is InvalidOperationException or SqlException { Class: < 20, Number: not -2 })
        {
            // Nothing of this attempt was committed. Mostly some object of the batch is stored already (a duplicate
            // key; Babelfish may report it as a broken bulk-load stream instead). Or SqlBulkCopy refused a value before
            // sending it (too long for its column, say; its message quotes the value, so it is not passed on). Either
            // way the careful path decides, with the server's own verdict. A lost connection (severity 20 and up) or a
            // timeout is not tried again here: the careful path would only meet it again, so it goes to the caller.
        }
        var (inserted, storedClients) = await InsertIfAbsentAsync(rows, children, cancellationToken);
        ClientConflicts.Report(_logger, _map.Type, ClientConflicts.Find(batch, storedClients));
        return inserted;
    }

    private async Task<int> BulkCopyAsync(List<StoredRow<T>> rows, IPreparedRows[] children, CancellationToken cancellationToken)
    {
        await using var connection = new SqlConnection(_settings.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        try
        {
            await using var transaction = (SqlTransaction)await connection.BeginTransactionAsync(cancellationToken);
            await CopyAsync(connection, transaction, _map.Table, new RowReader<StoredRow<T>>([.. _map.Columns], rows), cancellationToken);
            foreach (var child in children)
            {
                await CopyAsync(connection, transaction, child.Table, child.Reader(), cancellationToken);
            }
            await transaction.CommitAsync(cancellationToken);
            return rows.Count;
        }
        catch
        {
            // A refused bulk load can leave its error unread on the session (Babelfish reports it at the session's next
            // request): the session must not go back to the pool, or the careful path would meet that stale error.
            SqlConnection.ClearPool(connection);
            throw;
        }
    }

    private async Task<(int Inserted, Dictionary<Guid, string?> StoredClients)> InsertIfAbsentAsync(
        List<StoredRow<T>> rows, IPreparedRows[] children, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await InsertNewAsync(rows, children, cancellationToken);
            }
            catch (SqlException e) when (attempt < DuplicateKeyAttempts && IsDuplicateKey(e))
            {
                // Another consumer stored one of these objects between this batch's NOT EXISTS and its INSERT: where
                // the key-range lock is not honoured (Babelfish), the loser sees the duplicate key instead of waiting.
                // The object is stored, nothing of this attempt was: try again, and the insert-if-absent now skips it.
            }
        }
    }

    private async Task<(int Inserted, Dictionary<Guid, string?> StoredClients)> InsertNewAsync(
        List<StoredRow<T>> rows, IPreparedRows[] children, CancellationToken cancellationToken)
    {
        await using var connection = new SqlConnection(_settings.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = (SqlTransaction)await connection.BeginTransactionAsync(cancellationToken);

        await using var insert = new SqlCommand(_sql.InsertNew, connection, transaction);
        insert.Parameters.Add(new SqlParameter("@" + _map.Table, SqlDbType.Structured) { TypeName = "dbo." + _map.Type.SqlServerRowType, Value = _rowType.Records(rows) });
        foreach (var child in children)
        {
            insert.Parameters.Add(child.Parameter());
        }
        insert.Parameters.Add(new SqlParameter("@" + StandardColumns.ReceivedBy, SqlDbType.NVarChar, 128) { Value = _identity.Name });
        int inserted;
        var storedClients = new Dictionary<Guid, string?>(rows.Count);
        await using (var reader = await insert.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            inserted = reader.GetInt32(0);
            await reader.NextResultAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                storedClients[reader.GetGuid(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
            }
        }

        await transaction.CommitAsync(cancellationToken);
        return (inserted, storedClients);
    }

    private static bool IsDuplicateKey(SqlException e) => e.Errors.Cast<SqlError>().Any(error => error.Number is 2627 or 2601);

    private static async Task CopyAsync(SqlConnection connection, SqlTransaction transaction, string table, IDataReader rows, CancellationToken cancellationToken)
    {
        // CheckConstraints: the keys and checks hold for copied rows as for inserted ones, and SQL Server keeps
        // trusting its constraints. Columns left out (an identity, received_at) take their identity and default.
        using var copy = new SqlBulkCopy(connection, SqlBulkCopyOptions.CheckConstraints, transaction) { DestinationTableName = "dbo." + table, BatchSize = 0 };
        for (var i = 0; i < rows.FieldCount; i++)
        {
            copy.ColumnMappings.Add(rows.GetName(i), rows.GetName(i));
        }
        await copy.WriteToServerAsync(rows, cancellationToken);
    }

    /// <summary>A child table's rows for one batch, as a bulk-copy source and as a table-valued parameter.</summary>
    private interface IPreparedRows
    {
        string Table { get; }

        IDataReader Reader();

        SqlParameter Parameter();
    }

    private interface IChildRows
    {
        IPreparedRows Prepare(List<StoredRow<T>> parents);
    }

    private sealed class ChildVisitor(KeyRing keys) : IChildTableVisitor<T, IChildRows>
    {
        public IChildRows Visit<TElement>(ChildTable<T, TElement> table) where TElement : class => new ChildRows<TElement>(table, keys);
    }

    private sealed class ChildRows<TElement>(ChildTable<T, TElement> table, KeyRing keys) : IChildRows where TElement : class
    {
        private readonly RecordColumns<ChildRow<TElement>> _rowType = new([.. table.Columns]);

        public IPreparedRows Prepare(List<StoredRow<T>> parents) => new Prepared(this, table.RowsOf(parents, keys));

        private sealed class Prepared(ChildRows<TElement> owner, List<ChildRow<TElement>> rows) : IPreparedRows
        {
            public string Table => owner.Table;

            public IDataReader Reader() => new RowReader<ChildRow<TElement>>([.. owner.Columns], rows);

            public SqlParameter Parameter() => new("@" + owner.Collection, SqlDbType.Structured)
            {
                TypeName = $"dbo.{owner.ElementName}_row",
                Value = owner.RowType.Records(rows),
            };
        }

        private string Table => table.Table;

        private string Collection => table.Collection;

        private string ElementName => table.ElementName;

        private IReadOnlyList<Column<ChildRow<TElement>>> Columns => table.Columns;

        private RecordColumns<ChildRow<TElement>> RowType => _rowType;
    }
}
