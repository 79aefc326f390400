using System.Text;

namespace Envio.Contracts.Security;

/// <summary>
/// The columns that hold personal data (a data object's <c>[Sealed]</c> properties: an order's customer email and
/// document), stored encrypted with the key ring: each value is a <see cref="SealedValue"/> (key id, salt, nonce, tag,
/// ciphertext) whose associated data is its table, column and object id (and, in a child table, its line), so a value
/// copied onto another row or column does not open. Written by the consumer's stores; read by whoever holds the key
/// ring (tests, an operator's tool).
/// </summary>
public static class SensitiveColumns
{
    public const string OrdersTable = "orders";
    public const string CustomerEmail = "customer_email";
    public const string CustomerDocument = "customer_document";

    public static byte[] Seal(KeyRing keys, string table, string column, Guid id, string value, int? line = null) =>
        keys.Seal(Encoding.UTF8.GetBytes(value), AssociatedData(table, column, id, line));

    /// <summary>The stored value in clear; throws <see cref="UndecryptableException"/> with the reason.</summary>
    public static string Open(KeyRing keys, string table, string column, Guid id, byte[] stored, int? line = null) =>
        Encoding.UTF8.GetString(keys.Open(stored, AssociatedData(table, column, id, line)));

    /// <summary>An order's column (<see cref="CustomerEmail"/>, <see cref="CustomerDocument"/>) sealed.</summary>
    public static byte[] Seal(KeyRing keys, Guid orderId, string column, string value) => Seal(keys, OrdersTable, column, orderId, value);

    /// <summary>An order's column (<see cref="CustomerEmail"/>, <see cref="CustomerDocument"/>) in clear.</summary>
    public static string Open(KeyRing keys, Guid orderId, string column, byte[] stored) => Open(keys, OrdersTable, column, orderId, stored);

    // A root row's, exactly what orders' columns have always been bound to; a child row's adds its line.
    private static byte[] AssociatedData(string table, string column, Guid id, int? line) => KeyRing.Context(line is null
        ? $"envio-column\n{table}.{column}\n{id:D}"
        : $"envio-column\n{table}.{column}\n{id:D}\n{line}");
}
