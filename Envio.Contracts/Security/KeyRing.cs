using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Configuration;

namespace Envio.Contracts.Security;

/// <summary>
/// The AES-256 keys Envio encrypts with, by id, one of them current. New values are sealed with the current key; a
/// value names the key that sealed it, so values sealed with an older key still open while that key stays in the ring
/// (that is rotation: add a key, make it current, keep the old one until nothing needs it). Bound from
/// <c>Envio:Encryption:CurrentKeyId</c> and <c>Envio:Encryption:Keys:&lt;id&gt;</c> (base64 of 32 bytes).
/// </summary>
public sealed class KeyRing : IDisposable
{
    public const string SectionName = "Envio:Encryption";
    public const int KeySize = 32;

    private readonly Dictionary<string, byte[]> _keys;

    // An AesGcm per key and thread: making one imports the key into a new OpenSSL context, which costs more than
    // sealing a whole order, and an instance must not be used by two threads at once.
    private readonly ThreadLocal<Dictionary<string, AesGcm>> _ciphers = new(() => new(StringComparer.Ordinal), trackAllValues: true);

    public KeyRing(string currentKeyId, IReadOnlyDictionary<string, byte[]> keys)
    {
        foreach (var (id, key) in keys)
        {
            if (!SealedValue.IsValidKeyId(id))
            {
                throw new ArgumentException($"The key id '{id}' must be 1 to {SealedValue.MaxKeyIdLength} letters, digits, '-', '_' or '.'.", nameof(keys));
            }
            if (key.Length != KeySize)
            {
                throw new ArgumentException($"The key '{id}' has {key.Length} bytes; AES-256 needs {KeySize}.", nameof(keys));
            }
        }
        if (!keys.ContainsKey(currentKeyId))
        {
            throw new ArgumentException($"The current key '{currentKeyId}' is not in the key ring.", nameof(currentKeyId));
        }
        CurrentKeyId = currentKeyId;
        _keys = keys.ToDictionary(k => k.Key, k => k.Value.ToArray(), StringComparer.Ordinal);
    }

    /// <summary>The key new values are sealed with.</summary>
    public string CurrentKeyId { get; }

    public IReadOnlyCollection<string> KeyIds => _keys.Keys;

    /// <summary>
    /// Reads the ring from configuration, and says clearly what is missing or malformed (never the key itself): a
    /// service calls this while it starts, so a bad key stops it at once instead of at its first message.
    /// </summary>
    public static KeyRing FromConfiguration(IConfiguration configuration)
    {
        var section = configuration.GetSection(SectionName);
        var currentKeyId = section["CurrentKeyId"];
        if (string.IsNullOrWhiteSpace(currentKeyId))
        {
            throw new InvalidOperationException(
                $"{SectionName}:CurrentKeyId is not set (environment variable Envio__Encryption__CurrentKeyId): name the key that " +
                $"encrypts new messages and rows, and give it as {SectionName}:Keys:<id>, the base64 of {KeySize} random bytes.");
        }
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var child in section.GetSection("Keys").GetChildren())
        {
            keys[child.Key] = Decode(child.Key, child.Value);
        }
        if (!keys.ContainsKey(currentKeyId))
        {
            throw new InvalidOperationException(
                $"{SectionName}:Keys:{currentKeyId} (the current key) is not set (environment variable Envio__Encryption__Keys__{currentKeyId}): " +
                $"give the base64 of {KeySize} random bytes.");
        }
        try
        {
            return new KeyRing(currentKeyId, keys);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"{SectionName}: {e.Message}", e);
        }
    }

    private static byte[] Decode(string id, string? value)
    {
        var key = new byte[KeySize];
        if (string.IsNullOrWhiteSpace(value) || !Convert.TryFromBase64String(value.Trim(), key, out var length) || length != KeySize)
        {
            throw new InvalidOperationException(
                $"{SectionName}:Keys:{id} is not the base64 of {KeySize} bytes (an AES-256 key); generate one with `openssl rand -base64 {KeySize}`.");
        }
        return key;
    }

    /// <summary>Encrypts with the current key; <paramref name="associatedData"/> is authenticated, not stored.</summary>
    public byte[] Seal(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData) =>
        SealedValue.Seal(CurrentKeyId, Cipher(CurrentKeyId, _keys[CurrentKeyId]), plaintext, associatedData);

    /// <summary>Decrypts a sealed value with the key it names; throws <see cref="UndecryptableException"/> with the reason.</summary>
    public byte[] Open(ReadOnlySpan<byte> sealedValue, ReadOnlySpan<byte> associatedData)
    {
        var keyId = SealedValue.KeyIdOf(sealedValue)
            ?? throw new UndecryptableException("It is not an Envio encrypted value (too short, or an unknown format).");
        if (!_keys.TryGetValue(keyId, out var key))
        {
            throw new UndecryptableException(
                $"It was encrypted with key '{keyId}', which is not in the key ring ({string.Join(", ", _keys.Keys.Order(StringComparer.Ordinal))}).");
        }
        return SealedValue.Open(Cipher(keyId, key), sealedValue, associatedData);
    }

    private AesGcm Cipher(string keyId, byte[] key)
    {
        var ciphers = _ciphers.Value!;
        if (!ciphers.TryGetValue(keyId, out var cipher))
        {
            ciphers[keyId] = cipher = new AesGcm(key, SealedValue.TagSize);
        }
        return cipher;
    }

    public void Dispose()
    {
        foreach (var cipher in _ciphers.Values.SelectMany(ciphers => ciphers.Values))
        {
            cipher.Dispose();
        }
        _ciphers.Dispose();
    }

    /// <summary>Associated data from text (ids, names): binds a sealed value to where it belongs.</summary>
    public static byte[] Context(string text) => Encoding.UTF8.GetBytes(text);
}

/// <summary>A sealed value cannot be opened: the reason says why, and never holds key material or plaintext.</summary>
public sealed class UndecryptableException(string message, Exception? inner = null) : CryptographicException(message, inner);
