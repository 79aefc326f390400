using System.Data.Common;
using System.Globalization;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Microsoft.Data.SqlClient;
using Npgsql;

namespace Envio.Tests.Support;

/// <summary>
/// Reads orders back from the tables, in either engine, the way a user would look at them: the customer's email and
/// document are decrypted with the stack's key ring (they are stored encrypted).
/// </summary>
public static class StoredOrders
{
    /// <summary>Ids per query: literal lists that both engines read (SQL Server has no arrays to bind).</summary>
    private const int IdsPerQuery = 500;

    /// <summary>The orders database behind a connection string, whichever engine it names.</summary>
    public static DbDataSource Connect(string connectionString) =>
        StoreRegistration.DetectEngine("enviodb", connectionString) == StoreEngine.Postgres
            ? NpgsqlDataSource.Create(connectionString)
            : SqlClientFactory.Instance.CreateDataSource(connectionString);

    public static async Task<Dictionary<Guid, (Order Order, string ReceivedBy)>> ReadAsync(DbDataSource database, KeyRing keys, IReadOnlyCollection<Guid> ids)
    {
        var items = new Dictionary<Guid, List<OrderItem>>();
        await ForEachRowAsync(database, "SELECT order_id, sku, quantity, unit_price FROM order_items WHERE order_id IN ({0}) ORDER BY order_id, line_no", ids, reader =>
        {
            var id = reader.GetGuid(0);
            if (!items.TryGetValue(id, out var list))
            {
                items[id] = list = [];
            }
            list.Add(new OrderItem { Sku = reader.GetString(1), Quantity = reader.GetInt32(2), UnitPrice = reader.GetDecimal(3) });
        });

        var orders = new Dictionary<Guid, (Order, string)>();
        await ForEachRowAsync(database, """
            SELECT order_id, customer_name, customer_email, customer_document, currency, total, created_at, received_by
            FROM orders WHERE order_id IN ({0})
            """, ids, reader =>
        {
            var id = reader.GetGuid(0);
            orders[id] = (new Order
            {
                OrderId = id,
                Customer = new Customer
                {
                    Name = reader.GetString(1),
                    Email = SensitiveColumns.Open(keys, id, SensitiveColumns.CustomerEmail, reader.GetFieldValue<byte[]>(2)),
                    Document = SensitiveColumns.Open(keys, id, SensitiveColumns.CustomerDocument, reader.GetFieldValue<byte[]>(3)),
                },
                Currency = reader.GetString(4),
                Total = reader.GetDecimal(5),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(6),
                Items = items.GetValueOrDefault(id) ?? [],
            }, reader.GetString(7));
        });
        return orders;
    }

    public static async Task<long> CountAsync(DbDataSource database, string table, IReadOnlyCollection<Guid> ids)
    {
        long count = 0;
        await ForEachRowAsync(database, $"SELECT COUNT(*) FROM {table} WHERE order_id IN ({{0}})", ids,
            reader => count += Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture));
        return count;
    }

    /// <summary>Every order row in the table.</summary>
    public static async Task<long> CountAllAsync(DbDataSource database)
    {
        await using var command = database.CreateCommand("SELECT COUNT(*) FROM orders");
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>Polls until every id has a row, or the timeout passes; returns how many have one.</summary>
    public static async Task<long> WaitForAsync(DbDataSource database, IReadOnlyCollection<Guid> ids, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        long count;
        while ((count = await CountAsync(database, "orders", ids)) < ids.Count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }
        return count;
    }

    /// <summary>
    /// Counts the items stored without their order, in either engine. PostgreSQL has no foreign key to refuse them
    /// (migration 0003, for speed): the stores themselves must never write an item without its order.
    /// </summary>
    public const string CountItemsWithoutTheirOrder =
        "SELECT COUNT(*) FROM order_items AS i WHERE NOT EXISTS (SELECT 1 FROM orders AS o WHERE o.order_id = i.order_id)";

    public static async Task<long> ItemsWithoutTheirOrderAsync(DbDataSource database)
    {
        await using var command = database.CreateCommand(CountItemsWithoutTheirOrder);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Runs <paramref name="query"/> once per slice of <paramref name="ids"/>, with the slice in place of <c>{0}</c> as
    /// quoted literals (GUIDs format to hex and dashes only, so nothing can be injected).
    /// </summary>
    private static async Task ForEachRowAsync(DbDataSource database, string query, IReadOnlyCollection<Guid> ids, Action<DbDataReader> read)
    {
        foreach (var slice in ids.Chunk(IdsPerQuery))
        {
            await using var command = database.CreateCommand(string.Format(CultureInfo.InvariantCulture, query,
                string.Join(",", slice.Select(id => $"'{id:D}'"))));
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                read(reader);
            }
        }
    }
}
