using System.Security.Cryptography;
using System.Text;

namespace Envio.Contracts.Security;

/// <summary>
/// The byte layout of one AES-256-GCM encrypted value, used for message bodies and for database columns alike:
/// <code>
/// version (1 byte, 1) | key id length n (1 byte) | key id (n ASCII bytes) | nonce (12 bytes) | tag (16 bytes) | ciphertext
/// </code>
/// The nonce is fresh for every value (random, which is safe far beyond Envio's volumes per key). The header (version
/// and key id) is authenticated together with the caller's associated data, so neither can be altered unnoticed.
/// </summary>
public static class SealedValue
{
    public const byte Version = 1;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int MaxKeyIdLength = 64;

    public static bool IsValidKeyId(string id) =>
        id.Length is > 0 and <= MaxKeyIdLength && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    /// <summary>The id of the key a value was sealed with, or null when it is not a sealed value.</summary>
    public static string? KeyIdOf(ReadOnlySpan<byte> value)
    {
        if (value.Length < 2 || value[0] != Version || value[1] is 0 or > MaxKeyIdLength || value.Length < HeaderLength(value[1]) + NonceSize + TagSize)
        {
            return null;
        }
        var id = Encoding.ASCII.GetString(value.Slice(2, value[1]));
        return IsValidKeyId(id) ? id : null;
    }

    internal static byte[] Seal(string keyId, AesGcm aes, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var header = HeaderLength(keyId.Length);
        var sealedValue = new byte[header + NonceSize + TagSize + plaintext.Length];
        sealedValue[0] = Version;
        sealedValue[1] = (byte)keyId.Length;
        Encoding.ASCII.GetBytes(keyId, sealedValue.AsSpan(2));
        var nonce = sealedValue.AsSpan(header, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        aes.Encrypt(nonce, plaintext, sealedValue.AsSpan(header + NonceSize + TagSize), sealedValue.AsSpan(header + NonceSize, TagSize),
            Authenticated(sealedValue.AsSpan(0, header), associatedData));
        return sealedValue;
    }

    internal static byte[] Open(AesGcm aes, ReadOnlySpan<byte> sealedValue, ReadOnlySpan<byte> associatedData)
    {
        var header = HeaderLength(sealedValue[1]);
        var plaintext = new byte[sealedValue.Length - header - NonceSize - TagSize];
        try
        {
            aes.Decrypt(sealedValue.Slice(header, NonceSize), sealedValue[(header + NonceSize + TagSize)..],
                sealedValue.Slice(header + NonceSize, TagSize), plaintext, Authenticated(sealedValue[..header], associatedData));
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new UndecryptableException(
                "It failed authentication: altered, sealed with another key of the same id, or sealed for another message, row or column.", e);
        }
        return plaintext;
    }

    private static int HeaderLength(int keyIdLength) => 2 + keyIdLength;

    private static byte[] Authenticated(ReadOnlySpan<byte> header, ReadOnlySpan<byte> associatedData)
    {
        var all = new byte[header.Length + associatedData.Length];
        header.CopyTo(all);
        associatedData.CopyTo(all.AsSpan(header.Length));
        return all;
    }
}
