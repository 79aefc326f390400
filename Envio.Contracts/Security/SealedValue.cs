using System.Security.Cryptography;
using System.Text;

namespace Envio.Contracts.Security;

/// <summary>
/// The byte layout of one AES-256-GCM encrypted value, used for message bodies and for database columns alike:
/// <code>
/// version (1 byte, 2) | key id length n (1 byte) | key id (n ASCII bytes) | salt (16 bytes) | nonce (12 bytes) | tag (16 bytes) | ciphertext
/// </code>
/// The value is not encrypted with the ring's key itself but with a key derived from it and the salt (HKDF-SHA256),
/// and the nonce is random under that derived key. Random 96-bit nonces are safe for about 2^32 values per key;
/// one ring key at Envio's rates (three values per order) would reach that in days. A derived key seals at most
/// <see cref="ValuesPerDerivedKey"/> values before its sealer draws a new salt, so no key ever comes near the limit,
/// whatever the volume. The header (version, key id, salt) is authenticated together with the caller's associated
/// data: altering any of it makes the value fail authentication.
/// Version 1 (the same without the salt, encrypted with the ring key directly) is still opened, never written.
/// </summary>
public static class SealedValue
{
    public const byte Version = 2;
    public const byte UnsaltedVersion = 1;
    public const int SaltSize = 16;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int MaxKeyIdLength = 64;

    /// <summary>
    /// Values one derived key seals before a new salt is drawn: random nonces then collide with a probability of
    /// about 2^-49 per derived key (2^48 / 2^97), against the usual bound of 2^-32 for a whole key's life.
    /// </summary>
    public const long ValuesPerDerivedKey = 1L << 24;

    private static readonly byte[] DerivationInfo = "envio sealed value v2"u8.ToArray();

    public static bool IsValidKeyId(string id) =>
        id.Length is > 0 and <= MaxKeyIdLength && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    /// <summary>The id of the key a value was sealed with, or null when it is not a sealed value.</summary>
    public static string? KeyIdOf(ReadOnlySpan<byte> value)
    {
        if (value.Length < 2 || value[0] is not (Version or UnsaltedVersion) || value[1] is 0 or > MaxKeyIdLength
            || value.Length < HeaderLength(value[0], value[1]) + NonceSize + TagSize)
        {
            return null;
        }
        var id = Encoding.ASCII.GetString(value.Slice(2, value[1]));
        return IsValidKeyId(id) ? id : null;
    }

    /// <summary>The salt a version-2 value was sealed with (call after <see cref="KeyIdOf"/> accepted it), or empty for version 1.</summary>
    public static ReadOnlySpan<byte> SaltOf(ReadOnlySpan<byte> value) =>
        value[0] == Version ? value.Slice(2 + value[1], SaltSize) : [];

    /// <summary>The key a salt derives from a ring key: what seals and opens the values that carry that salt.</summary>
    public static byte[] DeriveKey(byte[] ringKey, ReadOnlySpan<byte> salt) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, ringKey, KeyRing.KeySize, salt.ToArray(), DerivationInfo);

    /// <summary>Seals with <paramref name="aes"/>, which holds the key derived from the ring key <paramref name="keyId"/> and <paramref name="salt"/>.</summary>
    internal static byte[] Seal(string keyId, ReadOnlySpan<byte> salt, AesGcm aes, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var header = HeaderLength(Version, keyId.Length);
        var sealedValue = new byte[header + NonceSize + TagSize + plaintext.Length];
        sealedValue[0] = Version;
        sealedValue[1] = (byte)keyId.Length;
        Encoding.ASCII.GetBytes(keyId, sealedValue.AsSpan(2));
        salt.CopyTo(sealedValue.AsSpan(2 + keyId.Length, SaltSize));
        var nonce = sealedValue.AsSpan(header, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        aes.Encrypt(nonce, plaintext, sealedValue.AsSpan(header + NonceSize + TagSize), sealedValue.AsSpan(header + NonceSize, TagSize),
            Authenticated(sealedValue.AsSpan(0, header), associatedData));
        return sealedValue;
    }

    /// <summary>Opens with <paramref name="aes"/>: the derived key for version 2, the ring key itself for version 1.</summary>
    internal static byte[] Open(AesGcm aes, ReadOnlySpan<byte> sealedValue, ReadOnlySpan<byte> associatedData)
    {
        var header = HeaderLength(sealedValue[0], sealedValue[1]);
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

    private static int HeaderLength(byte version, int keyIdLength) => 2 + keyIdLength + (version == Version ? SaltSize : 0);

    private static byte[] Authenticated(ReadOnlySpan<byte> header, ReadOnlySpan<byte> associatedData)
    {
        var all = new byte[header.Length + associatedData.Length];
        header.CopyTo(all);
        associatedData.CopyTo(all.AsSpan(header.Length));
        return all;
    }
}
