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

    // Per thread: making an AesGcm imports its key into a new OpenSSL context, which costs more than sealing a whole
    // order, and an instance must not be used by two threads at once.
    private readonly ThreadLocal<ThreadCiphers> _ciphers = new(() => new(), trackAllValues: true);

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
    /// The ring that seals stored columns: <c>Envio:Encryption:Columns</c> (its own <c>CurrentKeyId</c> and
    /// <c>Keys:&lt;id&gt;</c>), which only the consumer is given, so that the internet-facing API, holding the message
    /// keys, cannot open what is stored. A deployment that has not split its keys yet (no <c>Columns:CurrentKeyId</c>)
    /// seals columns with <paramref name="messageKeys"/>, as every version before did.
    /// </summary>
    public static KeyRing ForColumns(IConfiguration configuration, KeyRing messageKeys) =>
        string.IsNullOrWhiteSpace(configuration[ColumnsSectionName + ":CurrentKeyId"]) ? messageKeys : FromConfiguration(configuration, ColumnsSectionName);

    public const string ColumnsSectionName = SectionName + ":Columns";

    /// <summary>The key the consumer's column ring is registered under (a keyed service beside the message ring).</summary>
    public const string ColumnsServiceKey = "columns";

    /// <summary>
    /// Reads the ring from configuration, and says clearly what is missing or malformed (never the key itself): a
    /// service calls this while it starts, so a bad key stops it at once instead of at its first message.
    /// </summary>
    public static KeyRing FromConfiguration(IConfiguration configuration, string sectionName = SectionName)
    {
        var section = configuration.GetSection(sectionName);
        var variable = sectionName.Replace(":", "__", StringComparison.Ordinal);
        var currentKeyId = section["CurrentKeyId"];
        if (string.IsNullOrWhiteSpace(currentKeyId))
        {
            throw new InvalidOperationException(
                $"{sectionName}:CurrentKeyId is not set (environment variable {variable}__CurrentKeyId): name the key that " +
                $"encrypts new values, and give it as {sectionName}:Keys:<id>, the base64 of {KeySize} random bytes.");
        }
        var keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var child in section.GetSection("Keys").GetChildren())
        {
            keys[child.Key] = Decode(sectionName, child.Key, child.Value);
        }
        if (!keys.ContainsKey(currentKeyId))
        {
            throw new InvalidOperationException(
                $"{sectionName}:Keys:{currentKeyId} (the current key) is not set (environment variable {variable}__Keys__{currentKeyId}): " +
                $"give the base64 of {KeySize} random bytes.");
        }
        try
        {
            return new KeyRing(currentKeyId, keys);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"{sectionName}: {e.Message}", e);
        }
    }

    private static byte[] Decode(string sectionName, string id, string? value)
    {
        var key = new byte[KeySize];
        if (string.IsNullOrWhiteSpace(value) || !Convert.TryFromBase64String(value.Trim(), key, out var length) || length != KeySize)
        {
            throw new InvalidOperationException(
                $"{sectionName}:Keys:{id} is not the base64 of {KeySize} bytes (an AES-256 key); generate one with `openssl rand -base64 {KeySize}`.");
        }
        return key;
    }

    /// <summary>
    /// Encrypts with a key derived from the current key and this thread's salt (<see cref="SealedValue"/>);
    /// <paramref name="associatedData"/> is authenticated, not stored.
    /// </summary>
    public byte[] Seal(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var sealer = _ciphers.Value!.SealerFor(CurrentKeyId, _keys[CurrentKeyId]);
        return SealedValue.Seal(CurrentKeyId, sealer.Salt, sealer.Cipher, plaintext, associatedData);
    }

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
        return SealedValue.Open(_ciphers.Value!.OpenerFor(keyId, key, SealedValue.SaltOf(sealedValue)), sealedValue, associatedData);
    }

    public void Dispose()
    {
        foreach (var ciphers in _ciphers.Values)
        {
            ciphers.Dispose();
        }
        _ciphers.Dispose();
    }

    /// <summary>Associated data from text (ids, names): binds a sealed value to where it belongs.</summary>
    public static byte[] Context(string text) => Encoding.UTF8.GetBytes(text);
}

/// <summary>A sealed value cannot be opened: the reason says why, and never holds key material or plaintext.</summary>
public sealed class UndecryptableException(string message, Exception? inner = null) : CryptographicException(message, inner);

/// <summary>One thread's ciphers: the derived key it seals with now (per ring key), and those it opened with lately.</summary>
internal sealed class ThreadCiphers : IDisposable
{
    // Values from other threads and processes carry their own salts; a few dozen derived keys cover a busy consumer,
    // and past that the cache starts over rather than grow without bound.
    private const int MaxOpeners = 64;

    private readonly Dictionary<string, Sealer> _sealers = new(StringComparer.Ordinal);
    private readonly Dictionary<(string KeyId, UInt128 Salt), AesGcm> _openers = [];
    private readonly Dictionary<string, AesGcm> _unsalted = new(StringComparer.Ordinal);

    public sealed class Sealer(byte[] salt, AesGcm cipher)
    {
        public byte[] Salt { get; } = salt;
        public AesGcm Cipher { get; } = cipher;
        public long Sealed { get; set; }
    }

    /// <summary>The sealer for a ring key, with a fresh salt once the current one sealed its share.</summary>
    public Sealer SealerFor(string keyId, byte[] ringKey)
    {
        if (!_sealers.TryGetValue(keyId, out var sealer) || sealer.Sealed >= SealedValue.ValuesPerDerivedKey)
        {
            sealer?.Cipher.Dispose();
            var salt = RandomNumberGenerator.GetBytes(SealedValue.SaltSize);
            _sealers[keyId] = sealer = new Sealer(salt, new AesGcm(SealedValue.DeriveKey(ringKey, salt), SealedValue.TagSize));
        }
        sealer.Sealed++;
        return sealer;
    }

    /// <summary>The cipher that opens a value of this ring key and salt (an empty salt: a version-1 value, the ring key itself).</summary>
    public AesGcm OpenerFor(string keyId, byte[] ringKey, ReadOnlySpan<byte> salt)
    {
        if (salt.IsEmpty)
        {
            if (!_unsalted.TryGetValue(keyId, out var unsalted))
            {
                _unsalted[keyId] = unsalted = new AesGcm(ringKey, SealedValue.TagSize);
            }
            return unsalted;
        }
        var cacheKey = (keyId, BitConverter.ToUInt128(salt));
        if (!_openers.TryGetValue(cacheKey, out var opener))
        {
            if (_openers.Count >= MaxOpeners)
            {
                DisposeAll(_openers.Values);
                _openers.Clear();
            }
            _openers[cacheKey] = opener = new AesGcm(SealedValue.DeriveKey(ringKey, salt), SealedValue.TagSize);
        }
        return opener;
    }

    public void Dispose()
    {
        DisposeAll(_sealers.Values.Select(s => s.Cipher));
        DisposeAll(_openers.Values);
        DisposeAll(_unsalted.Values);
    }

    private static void DisposeAll(IEnumerable<AesGcm> ciphers)
    {
        foreach (var cipher in ciphers)
        {
            cipher.Dispose();
        }
    }
}
