using System.Text;

namespace Envio.Contracts.Security;

/// <summary>
/// The columns that hold personal data (<c>customer_email</c>, <c>customer_document</c>), stored encrypted with the
/// key ring: each value is a <see cref="SealedValue"/> (key id, fresh nonce, tag, ciphertext) whose associated data
/// is its order id and column, so a value copied onto another row or column does not open. Written by the consumer's
/// stores; read by whoever holds the key ring (tests, an operator's tool).
/// </summary>
public static class SensitiveColumns
{
    public const string CustomerEmail = "customer_email";
    public const string CustomerDocument = "customer_document";

    public static byte[] Seal(KeyRing keys, Guid orderId, string column, string value) =>
        keys.Seal(Encoding.UTF8.GetBytes(value), AssociatedData(orderId, column));

    /// <summary>The stored value in clear; throws <see cref="UndecryptableException"/> with the reason.</summary>
    public static string Open(KeyRing keys, Guid orderId, string column, byte[] stored) =>
        Encoding.UTF8.GetString(keys.Open(stored, AssociatedData(orderId, column)));

    private static byte[] AssociatedData(Guid orderId, string column) => KeyRing.Context($"envio-column\norders.{column}\n{orderId:D}");
}
