using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.Security;
using Npgsql;

namespace Envio.ConsumerService.Persistence.Postgres;

/// <summary>
/// One type's batches into PostgreSQL, with binary COPY. The common batch holds only new objects: it is copied
/// straight into the tables. When one of them is stored already (a redelivery, a client's retry) the primary key
/// refuses the copy, the transaction rolls back, and the batch takes the careful path (see <see cref="PostgresSql"/>);
/// only then (some id was stored already) does it look up the client stored with each id of the batch, to report a
/// <see cref="ClientConflict"/>.
/// </summary>
internal sealed class PostgresTableWriter<T> : ITableWriter<T> where T : class
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly TableMap<T> _map;
    private readonly KeyRing _keys;
    private readonly ConsumerIdentity _identity;
    private readonly ILogger _logger;
    private readonly PostgresSql _sql;
    private readonly CopyRow<StoredRow<T>>[] _columns;
    private readonly CopyRow<StoredRow<T>>[] _arrivedColumns;
    private readonly IChildCopy<T>[] _children;

    public PostgresTableWriter(NpgsqlDataSource dataSource, TableMap<T> map, KeyRing keys, ConsumerIdentity identity, ILogger logger)
    {
        (_dataSource, _map, _keys, _identity, _logger) = (dataSource, map, keys, identity, logger);
        _sql = PostgresSql.Of(map);
        _columns = [.. map.Columns.Select(c => c.Accept(CopyColumns<StoredRow<T>>.Instance))];
        _arrivedColumns = _columns[..^1];
        _children = [.. map.Children.Select((child, i) => child.Accept(new ChildCopies(keys, _sql.ChildCopyDirect[i], _sql.ChildCopyStaging[i])))];
    }

    public async Task<int> InsertAsync(IReadOnlyList<Received<T>> batch, CancellationToken cancellationToken)
    {
        var rows = _map.RowsOf(batch, _keys, _identity.Name);
        var children = _children.Select(child => child.Prepare(rows)).ToArray();
        int inserted;
        Dictionary<Guid, string?> storedClients;
        try
        {
            inserted = await CopyDirectAsync(rows, children, cancellationToken);
            storedClients = ClientConflicts.OfRows(batch, rows);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            // Some object of the batch is stored already: nothing of this attempt was committed.
            (inserted, storedClients) = await CopyThroughStagingAsync(rows, children, cancellationToken);
        }
        ClientConflicts.Report(_logger, _map.Type, ClientConflicts.Find(batch, storedClients));
        return inserted;
    }

    private async Task<int> CopyDirectAsync(List<StoredRow<T>> rows, IPreparedCopy[] children, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await CopyAsync(connection, _sql.CopyDirect, _columns, rows, cancellationToken);
        foreach (var child in children)
        {
            await child.CopyAsync(connection, staging: false, cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return rows.Count;
    }

    private async Task<(int Inserted, Dictionary<Guid, string?> StoredClients)> CopyThroughStagingAsync(
        List<StoredRow<T>> rows, IPreparedCopy[] children, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        await using (var create = new NpgsqlCommand(_sql.CreateStaging, connection, transaction))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        await CopyAsync(connection, _sql.CopyStaging, _arrivedColumns, rows, cancellationToken);
        foreach (var child in children)
        {
            await child.CopyAsync(connection, staging: true, cancellationToken);
        }

        int inserted;
        await using (var insert = new NpgsqlCommand(_sql.InsertNew, connection, transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _identity.Name });
            inserted = Convert.ToInt32(await insert.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        }
        var storedClients = new Dictionary<Guid, string?>(rows.Count);
        await using (var select = new NpgsqlCommand(_sql.SelectStoredClients, connection, transaction))
        await using (var reader = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                storedClients[reader.GetGuid(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
            }
        }

        await transaction.CommitAsync(cancellationToken);
        return (inserted, storedClients);
    }

    internal static async Task CopyAsync<TRow>(
        NpgsqlConnection connection, string copy, CopyRow<TRow>[] columns, List<TRow> rows, CancellationToken cancellationToken)
    {
        await using var writer = await connection.BeginBinaryImportAsync(copy, cancellationToken);
        foreach (var row in rows)
        {
            await writer.StartRowAsync(cancellationToken);
            foreach (var column in columns)
            {
                await column(writer, row, cancellationToken);
            }
        }
        await writer.CompleteAsync(cancellationToken);
    }

    /// <summary>A child table's rows for one batch, ready to be copied straight into the table or into staging.</summary>
    private interface IPreparedCopy
    {
        Task CopyAsync(NpgsqlConnection connection, bool staging, CancellationToken cancellationToken);
    }

    private interface IChildCopy<TParent> where TParent : class
    {
        IPreparedCopy Prepare(List<StoredRow<TParent>> parents);
    }

    private sealed class ChildCopies(KeyRing keys, string direct, string staging) : IChildTableVisitor<T, IChildCopy<T>>
    {
        public IChildCopy<T> Visit<TElement>(ChildTable<T, TElement> table) where TElement : class =>
            new ChildCopy<TElement>(table, keys, direct, staging, [.. table.Columns.Select(c => c.Accept(CopyColumns<ChildRow<TElement>>.Instance))]);
    }

    private sealed class ChildCopy<TElement>(ChildTable<T, TElement> table, KeyRing keys, string direct, string staging, CopyRow<ChildRow<TElement>>[] columns)
        : IChildCopy<T> where TElement : class
    {
        public IPreparedCopy Prepare(List<StoredRow<T>> parents)
        {
            var rows = table.RowsOf(parents, keys);
            return new Prepared((connection, toStaging, ct) => CopyAsync(connection, toStaging ? staging : direct, columns, rows, ct));
        }
    }

    private sealed class Prepared(Func<NpgsqlConnection, bool, CancellationToken, Task> copy) : IPreparedCopy
    {
        public Task CopyAsync(NpgsqlConnection connection, bool staging, CancellationToken cancellationToken) => copy(connection, staging, cancellationToken);
    }
}
