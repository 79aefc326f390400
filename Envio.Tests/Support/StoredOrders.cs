using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Npgsql;

namespace Envio.Tests.Support;

/// <summary>
/// Reads orders back from the PostgreSQL tables, the way a user would look at them: the customer's email and document
/// are decrypted with the stack's key ring (they are stored encrypted).
/// </summary>
public static class StoredOrders
{
    public static async Task<Dictionary<Guid, (Order Order, string ReceivedBy)>> ReadAsync(NpgsqlDataSource database, KeyRing keys, IReadOnlyCollection<Guid> ids)
    {
        var items = new Dictionary<Guid, List<OrderItem>>();
        await using (var command = database.CreateCommand(
            "SELECT order_id, sku, quantity, unit_price FROM order_items WHERE order_id = ANY($1) ORDER BY order_id, line_no"))
        {
            command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = [.. ids] });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var id = reader.GetGuid(0);
                if (!items.TryGetValue(id, out var list))
                {
                    items[id] = list = [];
                }
                list.Add(new OrderItem { Sku = reader.GetString(1), Quantity = reader.GetInt32(2), UnitPrice = reader.GetDecimal(3) });
            }
        }

        var orders = new Dictionary<Guid, (Order, string)>();
        await using (var command = database.CreateCommand("""
            SELECT order_id, customer_name, customer_email, customer_document, currency, total, created_at, received_by
            FROM orders WHERE order_id = ANY($1)
            """))
        {
            command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = [.. ids] });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
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
            }
        }
        return orders;
    }

    public static async Task<long> CountAsync(NpgsqlDataSource database, string table, IReadOnlyCollection<Guid> ids)
    {
        await using var command = database.CreateCommand($"SELECT count(*) FROM {table} WHERE order_id = ANY($1)");
        command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = [.. ids] });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Polls until every id has a row, or the timeout passes; returns how many have one.</summary>
    public static async Task<long> WaitForAsync(NpgsqlDataSource database, IReadOnlyCollection<Guid> ids, TimeSpan timeout)
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

    public static async Task<long> ItemsWithoutTheirOrderAsync(NpgsqlDataSource database)
    {
        await using var command = database.CreateCommand(CountItemsWithoutTheirOrder);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
