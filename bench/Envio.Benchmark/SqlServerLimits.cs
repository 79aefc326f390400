using System.Data;
using System.Diagnostics;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Microsoft.Data.SqlClient;
using Microsoft.Data.SqlClient.Server;

namespace Envio.Benchmark;

/// <summary>
/// What SQL Server can take with nothing of Envio in between: the benchmark's orders with their items, 500 orders per
/// transaction, the customer's email and document sealed as Envio seals them (the limit includes that cost), into
/// Envio's own tables as its migrations made them. Two ways a plain client inserts in bulk: SqlBulkCopy and one round
/// trip of table-valued parameters. The rows stay: deleting them would leave dead rows that Babelfish's autovacuum
/// then cleans up during whichever phase comes next.
/// </summary>
internal static class SqlServerLimits
{
    private const int OrdersPerTransaction = 500;

    // The table types of Envio's migrations, as its store sends them (Persistence/SqlServerOrderStore.cs: text wider
    // than its columns, so SqlClient never cuts a value short).
    private static readonly SqlMetaData[] OrderRowShape =
    [
        new("order_id", SqlDbType.UniqueIdentifier),
        new("customer_name", SqlDbType.NVarChar, 4000),
        new("customer_email", SqlDbType.VarBinary, SqlMetaData.Max),
        new("customer_document", SqlDbType.VarBinary, SqlMetaData.Max),
        new("currency", SqlDbType.NVarChar, 4000),
        new("total", SqlDbType.Decimal, 19, 4),
        new("created_at", SqlDbType.DateTimeOffset),
        new("correlation_id", SqlDbType.NVarChar, 4000),
    ];

    private static readonly SqlMetaData[] OrderItemRowShape =
    [
        new("order_id", SqlDbType.UniqueIdentifier),
        new("line_no", SqlDbType.Int),
        new("sku", SqlDbType.NVarChar, 4000),
        new("quantity", SqlDbType.Int),
        new("unit_price", SqlDbType.Decimal, 19, 4),
    ];

    // The transaction is in the batch itself: the whole transaction is one round trip.
    private const string InsertFromParameters = """
        SET XACT_ABORT ON;
        BEGIN TRANSACTION;
        INSERT INTO dbo.orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, received_by)
        SELECT order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, N'bench' FROM @orders;
        INSERT INTO dbo.order_items (order_id, line_no, sku, quantity, unit_price)
        SELECT order_id, line_no, sku, quantity, unit_price FROM @items;
        COMMIT TRANSACTION;
        """;

    /// <summary>One transaction of orders and their items, on an open connection.</summary>
    public delegate Task Insert(SqlConnection connection, Order[] orders, KeyRing keys, CancellationToken ct);

    /// <summary>SqlBulkCopy of the orders, then of their items, in one transaction.</summary>
    public static async Task BulkCopyAsync(SqlConnection connection, Order[] orders, KeyRing keys, CancellationToken ct)
    {
        await using var transaction = (SqlTransaction)await connection.BeginTransactionAsync(ct);
        await CopyAsync(connection, transaction, "dbo.orders", OrderTable(orders, keys), ct);
        await CopyAsync(connection, transaction, "dbo.order_items", ItemTable(orders), ct);
        await transaction.CommitAsync(ct);
    }

    /// <summary>One batch: both tables inserted from table-valued parameters, the transaction inside it.</summary>
    public static async Task TableValuedAsync(SqlConnection connection, Order[] orders, KeyRing keys, CancellationToken ct)
    {
        await using var insert = new SqlCommand(InsertFromParameters, connection);
        insert.Parameters.Add(new SqlParameter("@orders", SqlDbType.Structured) { TypeName = "dbo.order_row", Value = OrderRecords(orders, keys) });
        insert.Parameters.Add(new SqlParameter("@items", SqlDbType.Structured) { TypeName = "dbo.order_item_row", Value = ItemRecords(orders) });
        await insert.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// One transaction, untimed: the first of its kind on a connection fills the server's caches (catalog and plans,
    /// per backend process on Babelfish), which took 0.4-1 s here, as long as the rest of a quick run. The limit is the
    /// rate after that.
    /// </summary>
    public static Task WarmUpAsync(string connectionString, Insert insert, KeyRing keys, CancellationToken ct) =>
        RateAsync(connectionString, insert, OrdersPerTransaction, keys, ct);

    /// <summary>N orders in transactions of 500; orders per second.</summary>
    public static async Task<double> RateAsync(string connectionString, Insert insert, int n, KeyRing keys, CancellationToken ct)
    {
        var orders = Enumerable.Range(0, n).Select(i => BenchOrders.Create(i, DateTimeOffset.UtcNow)).ToList();
        var clock = Stopwatch.StartNew();
        foreach (var chunk in orders.Chunk(OrdersPerTransaction))
        {
            // A pooled connection per transaction, as the PostgreSQL COPY and Envio's store take theirs.
            await using var connection = new SqlConnection(connectionString);
            await connection.OpenAsync(ct);
            await insert(connection, chunk, keys, ct);
        }
        return n / clock.Elapsed.TotalSeconds;
    }

    private static async Task CopyAsync(SqlConnection connection, SqlTransaction transaction, string table, DataTable rows, CancellationToken ct)
    {
        // CheckConstraints: as Envio's inserts and the COPY are checked, and so SQL Server keeps trusting the constraints.
        using var copy = new SqlBulkCopy(connection, SqlBulkCopyOptions.CheckConstraints, transaction) { DestinationTableName = table, BatchSize = 0 };
        foreach (DataColumn column in rows.Columns)
        {
            copy.ColumnMappings.Add(column.ColumnName, column.ColumnName);
        }
        await copy.WriteToServerAsync(rows, ct);
    }

    private static DataTable OrderTable(Order[] chunk, KeyRing keys)
    {
        var table = new DataTable
        {
            Columns =
            {
                { "order_id", typeof(Guid) }, { "customer_name", typeof(string) }, { "customer_email", typeof(byte[]) },
                { "customer_document", typeof(byte[]) }, { "currency", typeof(string) }, { "total", typeof(decimal) },
                { "created_at", typeof(DateTimeOffset) }, { "received_by", typeof(string) },
            },
        };
        foreach (var o in chunk)
        {
            table.Rows.Add(o.OrderId, o.Customer.Name,
                SensitiveColumns.Seal(keys, o.OrderId, SensitiveColumns.CustomerEmail, o.Customer.Email),
                SensitiveColumns.Seal(keys, o.OrderId, SensitiveColumns.CustomerDocument, o.Customer.Document),
                o.Currency, o.Total, o.CreatedAt, "bench");
        }
        return table;
    }

    private static DataTable ItemTable(Order[] chunk)
    {
        var table = new DataTable
        {
            Columns =
            {
                { "order_id", typeof(Guid) }, { "line_no", typeof(int) }, { "sku", typeof(string) },
                { "quantity", typeof(int) }, { "unit_price", typeof(decimal) },
            },
        };
        foreach (var o in chunk)
        {
            for (var line = 0; line < o.Items.Count; line++)
            {
                table.Rows.Add(o.OrderId, line + 1, o.Items[line].Sku, o.Items[line].Quantity, o.Items[line].UnitPrice);
            }
        }
        return table;
    }

    private static IEnumerable<SqlDataRecord> OrderRecords(Order[] chunk, KeyRing keys) => chunk.Select(o =>
    {
        var record = new SqlDataRecord(OrderRowShape);
        record.SetGuid(0, o.OrderId);
        record.SetString(1, o.Customer.Name);
        record.SetValue(2, SensitiveColumns.Seal(keys, o.OrderId, SensitiveColumns.CustomerEmail, o.Customer.Email));
        record.SetValue(3, SensitiveColumns.Seal(keys, o.OrderId, SensitiveColumns.CustomerDocument, o.Customer.Document));
        record.SetString(4, o.Currency);
        record.SetDecimal(5, o.Total);
        record.SetDateTimeOffset(6, o.CreatedAt);
        record.SetDBNull(7);
        return record;
    });

    private static IEnumerable<SqlDataRecord> ItemRecords(Order[] chunk) => chunk.SelectMany(o => o.Items.Select((item, line) =>
    {
        var record = new SqlDataRecord(OrderItemRowShape);
        record.SetGuid(0, o.OrderId);
        record.SetInt32(1, line + 1);
        record.SetString(2, item.Sku);
        record.SetInt32(3, item.Quantity);
        record.SetDecimal(4, item.UnitPrice);
        return record;
    }));
}
