using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Envio.Messaging;
using RabbitMQ.Client;

namespace Envio.ApiService.Messaging;

/// <summary>
/// A name for one message of an error queue that needs no message id: the first 128 bits of a SHA-256 over the message
/// id, type, correlation id, the failure headers and the body, in hex. A message without an id, or one of two copies
/// of one id that failed differently, can be replayed or discarded by it. It does not depend on the message's position,
/// so it stays the same while other messages come and go. Two copies alike in all of these (one failure moved twice)
/// share a handle: they are the same message, and either may stand for the other.
/// </summary>
public static class FailedMessageHandle
{
    /// <summary>The length of a handle: 32 hex digits.</summary>
    public const int Length = 32;

    public static string Of(IReadOnlyBasicProperties properties, ReadOnlyMemory<byte> body)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Append(hash, properties.MessageId);
        Append(hash, properties.Type);
        Append(hash, properties.CorrelationId);
        foreach (var header in FailureHeaders.OfFailure)
        {
            Append(hash, HeaderText(properties, header));
        }
        Append(hash, body.Span);
        return Convert.ToHexStringLower(hash.GetHashAndReset().AsSpan(0, Length / 2));
    }

    /// <summary>Whether <paramref name="text"/> has a handle's shape, so a malformed one is a 400 rather than a search.</summary>
    public static bool IsWellFormed(string text) =>
        text.Length == Length && text.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));

    // Each field with its length before it, and absent apart from empty: no two different messages hash the same bytes.
    private static void Append(IncrementalHash hash, string? text)
    {
        if (text is null)
        {
            Append(hash, [], absent: true);
            return;
        }
        Append(hash, Encoding.UTF8.GetBytes(text));
    }

    private static void Append(IncrementalHash hash, ReadOnlySpan<byte> bytes, bool absent = false)
    {
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(length, absent ? -1 : bytes.Length);
        hash.AppendData(length);
        hash.AppendData(bytes);
    }

    private static string? HeaderText(IReadOnlyBasicProperties properties, string header) =>
        properties.Headers?.TryGetValue(header, out var value) == true
            ? value switch
            {
                byte[] bytes => Encoding.UTF8.GetString(bytes),
                null => null,
                _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture),
            }
            : null;
}
