using System.Text;
using Envio.Contracts.Security;
using RabbitMQ.Client;

namespace Envio.Messaging;

/// <summary>
/// How a message body travels encrypted: the order's JSON sealed with the key ring (<see cref="SealedValue"/>), with
/// the message id and type (and the sending client, when the message names one) as associated data, so a body moved
/// onto another message, or a client id changed or removed on the way, does not open. The properties
/// say so (<see cref="SchemeHeader"/>), and a consumer refuses a body without it: the broker's disk, the retry queues
/// and the error queue only ever hold ciphertext of what Envio's API accepted.
/// </summary>
public static class EncryptedBody
{
    /// <summary>The header naming the encryption scheme of the body; absent on a plaintext body.</summary>
    public const string SchemeHeader = "envio-encryption";

    public const string Scheme = "aes-256-gcm";

    /// <summary>What the body is to a tool that cannot open it.</summary>
    public const string ContentType = "application/octet-stream";

    /// <summary>The properties of an encrypted message carrying <paramref name="envelope"/>.</summary>
    public static BasicProperties Properties(Envelope envelope)
    {
        var properties = envelope.ToProperties(ContentType);
        properties.Headers![SchemeHeader] = Scheme;
        return properties;
    }

    public static byte[] Seal(KeyRing keys, Envelope envelope, ReadOnlySpan<byte> plaintext) =>
        keys.Seal(plaintext, AssociatedData(envelope));

    /// <summary>The scheme the properties name, or null for a plaintext body.</summary>
    public static string? SchemeOf(IReadOnlyBasicProperties properties) =>
        properties.Headers?.TryGetValue(SchemeHeader, out var value) == true
            ? value switch { byte[] bytes => Encoding.UTF8.GetString(bytes), string text => text, _ => null }
            : null;

    /// <summary>The plaintext body; throws <see cref="UndecryptableException"/> with the reason.</summary>
    public static byte[] Open(KeyRing keys, Envelope envelope, ReadOnlySpan<byte> body) =>
        keys.Open(body, AssociatedData(envelope));

    // Without a client id, exactly what messages said before there was one: those still open.
    private static byte[] AssociatedData(Envelope envelope) => KeyRing.Context(envelope.ClientId is null
        ? $"envio-message\n{envelope.MessageId:D}\n{envelope.Type}"
        : $"envio-message\n{envelope.MessageId:D}\n{envelope.Type}\n{envelope.ClientId}");
}
