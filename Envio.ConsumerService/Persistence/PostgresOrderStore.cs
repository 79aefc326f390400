using DbUp;
using Envio.Contracts.Security;
using Npgsql;
using NpgsqlTypes;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// PostgreSQL, with binary COPY. The common batch holds only new orders: it is copied straight into the tables. When
/// one of them is stored already (a redelivery, a client's retry) the primary key refuses the copy, the transaction
/// rolls back, and the batch takes the careful path: COPY into temporary tables, then <c>INSERT … ON CONFLICT DO
/// NOTHING</c>, with items inserted only for the orders that were new; only then (some id was stored already) does it
/// look up the client stored with each id of the batch, to report a <see cref="ClientConflict"/>.
/// </summary>
public sealed class PostgresOrderStore(
    NpgsqlDataSource dataSource, StoreSettings settings, ConsumerIdentity identity, KeyRing keys, ILogger<PostgresOrderStore> logger) : IOrderStore
{
    /// <summary>Any fixed number: the advisory lock every replica takes before migrating.</summary>
    internal const long MigrationLockKey = 0x456E76696F;

    internal const string CreateStaging = """
        CREATE TEMP TABLE staging_orders (
            order_id uuid NOT NULL, customer_name varchar(200) NOT NULL, customer_email bytea NOT NULL,
            customer_document bytea NOT NULL, currency char(3) NOT NULL, total numeric(19,4) NOT NULL,
            created_at timestamptz NOT NULL, correlation_id varchar(128) NULL, client_id varchar(256) NULL
        ) ON COMMIT DROP;
        CREATE TEMP TABLE staging_items (
            order_id uuid NOT NULL, line_no integer NOT NULL, sku varchar(64) NOT NULL,
            quantity integer NOT NULL, unit_price numeric(19,4) NOT NULL
        ) ON COMMIT DROP;
        """;

    internal const string CopyOrders = """
        COPY staging_orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id)
        FROM STDIN (FORMAT BINARY)
        """;

    internal const string CopyItems = "COPY staging_items (order_id, line_no, sku, quantity, unit_price) FROM STDIN (FORMAT BINARY)";

    internal const string InsertNew = """
        WITH inserted AS (
            INSERT INTO orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id, received_by)
            SELECT DISTINCT ON (order_id) order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id, $1
            FROM staging_orders
            ORDER BY order_id
            ON CONFLICT (order_id) DO NOTHING
            RETURNING order_id
        ), items AS (
            INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price)
            SELECT s.order_id, s.line_no, s.sku, s.quantity, s.unit_price
            FROM staging_items s JOIN inserted USING (order_id)
            RETURNING 1
        )
        SELECT count(*) FROM inserted
        """;

    /// <summary>After <see cref="InsertNew"/>, in its transaction: the client stored with each order id of the batch.</summary>
    internal const string SelectStoredClients = """
        SELECT o.order_id, o.client_id
        FROM orders o JOIN staging_orders s USING (order_id)
        """;

    internal const string CopyOrdersDirect = """
        COPY orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id, received_by)
        FROM STDIN (FORMAT BINARY)
        """;

    internal const string CopyItemsDirect = "COPY order_items (order_id, line_no, sku, quantity, unit_price) FROM STDIN (FORMAT BINARY)";

    public async Task<int> InsertAsync(IReadOnlyList<ReceivedOrder> batch, CancellationToken cancellationToken)
    {
        var (orders, items) = OrderRows.From(batch, keys);
        int inserted;
        Dictionary<Guid, string?> storedClients;
        try
        {
            inserted = await CopyDirectAsync(orders, items, cancellationToken);
            storedClients = ClientConflicts.OfRows(batch, orders);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            // Some order of the batch is stored already: nothing of this attempt was committed.
            (inserted, storedClients) = await CopyThroughStagingAsync(orders, items, cancellationToken);
        }
        ClientConflicts.Report(logger, ClientConflicts.Find(batch, storedClients));
        return inserted;
    }

    private async Task<int> CopyDirectAsync(List<OrderRow> orders, List<OrderItemRow> items, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await WriteOrdersAsync(connection, CopyOrdersDirect, orders, identity.Name, cancellationToken);
        await WriteItemsAsync(connection, CopyItemsDirect, items, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return orders.Count;
    }

    private async Task<(int Inserted, Dictionary<Guid, string?> StoredClients)> CopyThroughStagingAsync(
        List<OrderRow> orders, List<OrderItemRow> items, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        await using (var create = new NpgsqlCommand(CreateStaging, connection, transaction))
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        await WriteOrdersAsync(connection, CopyOrders, orders, receivedBy: null, cancellationToken);
        await WriteItemsAsync(connection, CopyItems, items, cancellationToken);

        int inserted;
        await using (var insert = new NpgsqlCommand(InsertNew, connection, transaction))
        {
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = identity.Name });
            inserted = Convert.ToInt32(await insert.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
        }
        var storedClients = new Dictionary<Guid, string?>(orders.Count);
        await using (var select = new NpgsqlCommand(SelectStoredClients, connection, transaction))
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

    /// <summary>Order rows in COPY's binary format; <paramref name="receivedBy"/> fills a last column when given.</summary>
    private static async Task WriteOrdersAsync(
        NpgsqlConnection connection, string copy, List<OrderRow> orders, string? receivedBy, CancellationToken cancellationToken)
    {
        await using var writer = await connection.BeginBinaryImportAsync(copy, cancellationToken);
        foreach (var order in orders)
        {
            await writer.StartRowAsync(cancellationToken);
            await writer.WriteAsync(order.OrderId, NpgsqlDbType.Uuid, cancellationToken);
            await writer.WriteAsync(order.CustomerName, NpgsqlDbType.Varchar, cancellationToken);
            await writer.WriteAsync(order.CustomerEmail, NpgsqlDbType.Bytea, cancellationToken);
            await writer.WriteAsync(order.CustomerDocument, NpgsqlDbType.Bytea, cancellationToken);
            await writer.WriteAsync(order.Currency, NpgsqlDbType.Char, cancellationToken);
            await writer.WriteAsync(order.Total, NpgsqlDbType.Numeric, cancellationToken);
            await writer.WriteAsync(order.CreatedAt.UtcDateTime, NpgsqlDbType.TimestampTz, cancellationToken);
            await WriteNullableAsync(writer, order.CorrelationId, cancellationToken);
            await WriteNullableAsync(writer, order.ClientId, cancellationToken);
            if (receivedBy is not null)
            {
                await writer.WriteAsync(receivedBy, NpgsqlDbType.Varchar, cancellationToken);
            }
        }
        await writer.CompleteAsync(cancellationToken);
    }

    private static async Task WriteNullableAsync(NpgsqlBinaryImporter writer, string? value, CancellationToken cancellationToken)
    {
        if (value is null)
        {
            await writer.WriteNullAsync(cancellationToken);
        }
        else
        {
            await writer.WriteAsync(value, NpgsqlDbType.Varchar, cancellationToken);
        }
    }

    private static async Task WriteItemsAsync(NpgsqlConnection connection, string copy, List<OrderItemRow> items, CancellationToken cancellationToken)
    {
        await using var writer = await connection.BeginBinaryImportAsync(copy, cancellationToken);
        foreach (var item in items)
        {
            await writer.StartRowAsync(cancellationToken);
            await writer.WriteAsync(item.OrderId, NpgsqlDbType.Uuid, cancellationToken);
            await writer.WriteAsync(item.LineNo, NpgsqlDbType.Integer, cancellationToken);
            await writer.WriteAsync(item.Sku, NpgsqlDbType.Varchar, cancellationToken);
            await writer.WriteAsync(item.Quantity, NpgsqlDbType.Integer, cancellationToken);
            await writer.WriteAsync(item.UnitPrice, NpgsqlDbType.Numeric, cancellationToken);
        }
        await writer.CompleteAsync(cancellationToken);
    }

    public async Task<bool> AnswersAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await using var ping = new NpgsqlCommand("SELECT 1", connection);
            await ping.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var lockConnection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({MigrationLockKey})", lockConnection)
        {
            CommandTimeout = Migrations.LockCommandTimeoutSeconds,
        })
        {
            await take.ExecuteNonQueryAsync(cancellationToken);
        }
        try
        {
            // DbUp opens its own connections; the lock above, held on another session, makes replicas take turns.
            Migrations.Apply(DeployChanges.To.PostgresqlDatabase(settings.ConnectionString), "Postgres", logger);
        }
        finally
        {
            await using var release = new NpgsqlCommand($"SELECT pg_advisory_unlock({MigrationLockKey})", lockConnection);
            await release.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }
}
