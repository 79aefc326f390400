using System.Data;
using DbUp;
using Envio.Contracts.Security;
using Microsoft.Data.SqlClient;
using Microsoft.Data.SqlClient.Server;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// SQL Server (and Babelfish for PostgreSQL), the way PostgreSQL's store works. The common batch holds only new orders:
/// SqlBulkCopy puts it straight into the tables, constraints checked. When one of them is stored already (a
/// redelivery, a client's retry) the primary key refuses the copy, the transaction rolls back, and the batch takes the
/// careful path: two table-valued parameters in one round trip, inserted where the order id is not stored yet (no
/// MERGE). On SQL Server the key-range lock (UPDLOCK, HOLDLOCK) keeps two consumers inserting the same new id from
/// both passing NOT EXISTS; Babelfish accepts and ignores those hints, so there the loser gets a duplicate key and the
/// batch is tried again. The careful path also returns, in the same round trip, the client stored with each order id of
/// the batch, to report a <see cref="ClientConflict"/>.
/// </summary>
public sealed class SqlServerOrderStore(
    StoreSettings settings, ConsumerIdentity identity, KeyRing keys, ILogger<SqlServerOrderStore> logger) : IOrderStore
{
    internal const string InsertNew = """
        DECLARE @inserted TABLE (order_id uniqueidentifier NOT NULL PRIMARY KEY);

        INSERT INTO dbo.orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id, received_by)
        OUTPUT inserted.order_id INTO @inserted (order_id)
        SELECT o.order_id, o.customer_name, o.customer_email, o.customer_document, o.currency, o.total, o.created_at, o.correlation_id, o.client_id, @received_by
        FROM (
            SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.order_id ORDER BY r.order_id) AS copy_no
            FROM @orders AS r
        ) AS o
        WHERE o.copy_no = 1
          AND NOT EXISTS (SELECT 1 FROM dbo.orders AS stored WITH (UPDLOCK, HOLDLOCK) WHERE stored.order_id = o.order_id);

        INSERT INTO dbo.order_items (order_id, line_no, sku, quantity, unit_price)
        SELECT i.order_id, i.line_no, i.sku, i.quantity, i.unit_price
        FROM @items AS i
        JOIN @inserted AS n ON n.order_id = i.order_id;

        SELECT COUNT(*) FROM @inserted;

        SELECT stored.order_id, stored.client_id
        FROM dbo.orders AS stored
        WHERE EXISTS (SELECT 1 FROM @orders AS r WHERE r.order_id = stored.order_id);
        """;

    /// <summary>
    /// How often a batch is tried again when a concurrent consumer won the race for one of its order ids. Each lost
    /// race means that order is now committed, so a few tries settle any realistic overlap; past them, the failure
    /// is transient like any other.
    /// </summary>
    private const int DuplicateKeyAttempts = 5;

    internal const string TakeMigrationLock = """
        DECLARE @result int;
        EXEC @result = sys.sp_getapplock @Resource = N'envio-migrations', @LockMode = N'Exclusive', @LockOwner = N'Session', @LockTimeout = @wait_ms;
        IF @result < 0 THROW 51000, N'Could not take the envio-migrations lock.', 1;
        """;

    internal const string ReleaseMigrationLock =
        "EXEC sys.sp_releaseapplock @Resource = N'envio-migrations', @LockOwner = N'Session';";

    /// <summary>
    /// The declared width of every text column of the table-valued parameters (and of the table types): wider than
    /// any column they fill, since SqlClient silently cuts a value to its declared width. An over-long value then
    /// reaches the INSERT still over-long, and the table refuses it (2628/8152) instead of storing it shortened.
    /// </summary>
    private const int TextWidth = 4000;

    private static readonly SqlMetaData[] OrderRowShape =
    [
        new("order_id", SqlDbType.UniqueIdentifier),
        new("customer_name", SqlDbType.NVarChar, TextWidth),
        new("customer_email", SqlDbType.VarBinary, SqlMetaData.Max),
        new("customer_document", SqlDbType.VarBinary, SqlMetaData.Max),
        new("currency", SqlDbType.NVarChar, TextWidth),
        new("total", SqlDbType.Decimal, 19, 4),
        new("created_at", SqlDbType.DateTimeOffset),
        new("correlation_id", SqlDbType.NVarChar, TextWidth),
        new("client_id", SqlDbType.NVarChar, TextWidth),
    ];

    private static readonly SqlMetaData[] OrderItemRowShape =
    [
        new("order_id", SqlDbType.UniqueIdentifier),
        new("line_no", SqlDbType.Int),
        new("sku", SqlDbType.NVarChar, TextWidth),
        new("quantity", SqlDbType.Int),
        new("unit_price", SqlDbType.Decimal, 19, 4),
    ];

    public async Task<int> InsertAsync(IReadOnlyList<ReceivedOrder> batch, CancellationToken cancellationToken)
    {
        var (orders, items) = OrderRows.From(batch, keys);
        try
        {
            var copied = await BulkCopyAsync(orders, items, cancellationToken);
            ClientConflicts.Report(logger, ClientConflicts.Find(batch, ClientConflicts.OfRows(batch, orders)));
            return copied;
        }
        catch (Exception e) when (e is InvalidOperationException or SqlException { Class: < 20, Number: not -2 })
        {
            // Nothing of this attempt was committed. Mostly some order of the batch is stored already (a duplicate
            // key; Babelfish may report it as a broken bulk-load stream instead). Or SqlBulkCopy refused a value before
            // sending it (too long for its column, say; its message quotes the value, so it is not passed on). Either
            // way the careful path decides, with the server's own verdict. A lost connection (severity 20 and up) or a
            // timeout is not tried again here: the careful path would only meet it again, so it goes to the caller.
        }
        var (inserted, storedClients) = await InsertIfAbsentAsync(orders, items, cancellationToken);
        ClientConflicts.Report(logger, ClientConflicts.Find(batch, storedClients));
        return inserted;
    }

    private async Task<int> BulkCopyAsync(List<OrderRow> orders, List<OrderItemRow> items, CancellationToken cancellationToken)
    {
        await using var connection = new SqlConnection(settings.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = (SqlTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await CopyAsync(connection, transaction, "dbo.orders", OrderTable(orders, identity.Name), cancellationToken);
        await CopyAsync(connection, transaction, "dbo.order_items", ItemTable(items), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return orders.Count;
    }

    private async Task<(int Inserted, Dictionary<Guid, string?> StoredClients)> InsertIfAbsentAsync(List<OrderRow> orders, List<OrderItemRow> items, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await InsertNewAsync(orders, items, cancellationToken);
            }
            catch (SqlException e) when (attempt < DuplicateKeyAttempts && IsDuplicateKey(e))
            {
                // Another consumer stored one of these orders between this batch's NOT EXISTS and its INSERT: where the
                // key-range lock is not honoured (Babelfish), the loser sees the duplicate key instead of waiting. The
                // order is stored, nothing of this attempt was: try again, and the insert-if-absent now skips it.
            }
        }
    }

    private async Task<(int Inserted, Dictionary<Guid, string?> StoredClients)> InsertNewAsync(
        List<OrderRow> orders, List<OrderItemRow> items, CancellationToken cancellationToken)
    {
        await using var connection = new SqlConnection(settings.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = (SqlTransaction)await connection.BeginTransactionAsync(cancellationToken);

        await using var insert = new SqlCommand(InsertNew, connection, transaction);
        insert.Parameters.Add(new SqlParameter("@orders", SqlDbType.Structured) { TypeName = "dbo.order_row_with_client", Value = OrderRecords(orders) });
        insert.Parameters.Add(new SqlParameter("@items", SqlDbType.Structured) { TypeName = "dbo.order_item_row", Value = ItemRecords(items) });
        insert.Parameters.Add(new SqlParameter("@received_by", SqlDbType.NVarChar, 128) { Value = identity.Name });
        int inserted;
        var storedClients = new Dictionary<Guid, string?>(orders.Count);
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

    public async Task<bool> AnswersAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new SqlConnection(settings.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var ping = new SqlCommand("SELECT 1", connection);
            await ping.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is SqlException or InvalidOperationException or TimeoutException or IOException)
        {
            return false; // InvalidOperationException: no connection came from the pool in time
        }
    }

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await SqlServerDatabases.EnsureExistsAsync(settings.ConnectionString, cancellationToken); // a bare server (compose)
        await using var lockConnection = new SqlConnection(settings.ConnectionString);
        await lockConnection.OpenAsync(cancellationToken);
        await using (var take = TakeMigrationLockCommand(lockConnection))
        {
            await take.ExecuteNonQueryAsync(cancellationToken);
        }
        try
        {
            // DbUp opens its own connections; the session lock above makes replicas take turns.
            Migrations.Apply(DeployChanges.To.SqlDatabase(settings.ConnectionString), "SqlServer", logger);
        }
        finally
        {
            await using var release = new SqlCommand(ReleaseMigrationLock, lockConnection);
            await release.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>Takes the migration lock for the connection's session, waiting up to <see cref="Migrations.LockWait"/>.</summary>
    internal static SqlCommand TakeMigrationLockCommand(SqlConnection connection) =>
        new(TakeMigrationLock, connection)
        {
            CommandTimeout = Migrations.LockCommandTimeoutSeconds,
            Parameters = { new SqlParameter("@wait_ms", SqlDbType.Int) { Value = (int)Migrations.LockWait.TotalMilliseconds } },
        };

    private static bool IsDuplicateKey(SqlException e) => e.Errors.Cast<SqlError>().Any(error => error.Number is 2627 or 2601);

    private static async Task CopyAsync(SqlConnection connection, SqlTransaction transaction, string table, DataTable rows, CancellationToken cancellationToken)
    {
        // CheckConstraints: the keys and checks hold for copied rows as for inserted ones, and SQL Server keeps
        // trusting its constraints. Columns left out (row_id, received_at) take their identity and default.
        using var copy = new SqlBulkCopy(connection, SqlBulkCopyOptions.CheckConstraints, transaction) { DestinationTableName = table, BatchSize = 0 };
        foreach (DataColumn column in rows.Columns)
        {
            copy.ColumnMappings.Add(column.ColumnName, column.ColumnName);
        }
        await copy.WriteToServerAsync(rows, cancellationToken);
    }

    private static DataTable OrderTable(List<OrderRow> orders, string receivedBy)
    {
        var table = new DataTable
        {
            Columns =
            {
                { "order_id", typeof(Guid) }, { "customer_name", typeof(string) }, { "customer_email", typeof(byte[]) },
                { "customer_document", typeof(byte[]) }, { "currency", typeof(string) }, { "total", typeof(decimal) },
                { "created_at", typeof(DateTimeOffset) }, { "correlation_id", typeof(string) }, { "client_id", typeof(string) },
                { "received_by", typeof(string) },
            },
        };
        foreach (var order in orders)
        {
            table.Rows.Add(order.OrderId, order.CustomerName, order.CustomerEmail, order.CustomerDocument, order.Currency,
                order.Total, order.CreatedAt, (object?)order.CorrelationId ?? DBNull.Value, (object?)order.ClientId ?? DBNull.Value, receivedBy);
        }
        return table;
    }

    private static DataTable ItemTable(List<OrderItemRow> items)
    {
        var table = new DataTable
        {
            Columns =
            {
                { "order_id", typeof(Guid) }, { "line_no", typeof(int) }, { "sku", typeof(string) },
                { "quantity", typeof(int) }, { "unit_price", typeof(decimal) },
            },
        };
        foreach (var item in items)
        {
            table.Rows.Add(item.OrderId, item.LineNo, item.Sku, item.Quantity, item.UnitPrice);
        }
        return table;
    }

    // A table-valued parameter must have at least one row or be null: an empty batch sends null.
    private static IEnumerable<SqlDataRecord>? OrderRecords(List<OrderRow> orders) => orders.Count == 0 ? null : orders.Select(order =>
    {
        var record = new SqlDataRecord(OrderRowShape);
        record.SetGuid(0, order.OrderId);
        record.SetString(1, order.CustomerName);
        record.SetBytes(2, 0, order.CustomerEmail, 0, order.CustomerEmail.Length);
        record.SetBytes(3, 0, order.CustomerDocument, 0, order.CustomerDocument.Length);
        record.SetString(4, order.Currency);
        record.SetDecimal(5, order.Total);
        record.SetDateTimeOffset(6, order.CreatedAt);
        if (order.CorrelationId is null)
        {
            record.SetDBNull(7);
        }
        else
        {
            record.SetString(7, order.CorrelationId);
        }
        if (order.ClientId is null)
        {
            record.SetDBNull(8);
        }
        else
        {
            record.SetString(8, order.ClientId);
        }
        return record;
    });

    private static IEnumerable<SqlDataRecord>? ItemRecords(List<OrderItemRow> items) => items.Count == 0 ? null : items.Select(item =>
    {
        var record = new SqlDataRecord(OrderItemRowShape);
        record.SetGuid(0, item.OrderId);
        record.SetInt32(1, item.LineNo);
        record.SetString(2, item.Sku);
        record.SetInt32(3, item.Quantity);
        record.SetDecimal(4, item.UnitPrice);
        return record;
    });
}
