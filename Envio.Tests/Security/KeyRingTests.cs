using System.Security.Cryptography;
using System.Text;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Extensions.Configuration;
using RabbitMQ.Client;

namespace Envio.Tests.Security;

/// <summary>The key ring and the encrypted value format, without a stack: what opens, what does not, and why.</summary>
public sealed class KeyRingTests
{
    private static readonly byte[] Context = KeyRing.Context("order 1");

    [Fact]
    public void A_sealed_value_opens_with_its_context_and_holds_no_plaintext()
    {
        var keys = EncryptionKeysOf.Fresh("k1");
        var plaintext = "ana.souza@example.com"u8.ToArray();

        var first = keys.Seal(plaintext, Context);
        var second = keys.Seal(plaintext, Context);

        Assert.Equal(plaintext, keys.Open(first, Context));
        Assert.NotEqual(first, second); // a fresh nonce every time
        Assert.Equal(-1, first.AsSpan().IndexOf(plaintext));
        Assert.Equal("k1", SealedValue.KeyIdOf(first));
        Assert.Equal(2 + 2 + SealedValue.SaltSize + SealedValue.NonceSize + SealedValue.TagSize + plaintext.Length, first.Length);
    }

    [Fact]
    public void A_value_is_sealed_with_a_key_derived_from_the_ring_key_and_the_salt_it_carries_never_with_the_ring_key_itself()
    {
        var ringKey = RandomNumberGenerator.GetBytes(KeyRing.KeySize);
        var keys = new KeyRing("k1", new Dictionary<string, byte[]> { ["k1"] = ringKey });
        var plaintext = "ana.souza@example.com"u8.ToArray();

        var value = keys.Seal(plaintext, Context);

        Assert.Equal(SealedValue.Version, value[0]);
        const int header = 2 + 2 + SealedValue.SaltSize;
        var salt = value.AsSpan(4, SealedValue.SaltSize).ToArray();
        Assert.Equal(salt, SealedValue.SaltOf(value).ToArray());
        var (nonce, tag, ciphertext) = (value[header..(header + SealedValue.NonceSize)],
            value[(header + SealedValue.NonceSize)..(header + SealedValue.NonceSize + SealedValue.TagSize)], value[(header + SealedValue.NonceSize + SealedValue.TagSize)..]);
        byte[] authenticated = [.. value[..header], .. Context];
        var opened = new byte[ciphertext.Length];
        using (var derived = new AesGcm(HKDF.DeriveKey(HashAlgorithmName.SHA256, ringKey, 32, salt, "envio sealed value v2"u8.ToArray()), SealedValue.TagSize))
        {
            derived.Decrypt(nonce, ciphertext, tag, opened, authenticated);
        }
        Assert.Equal(plaintext, opened);
        using var ring = new AesGcm(ringKey, SealedValue.TagSize);
        Assert.ThrowsAny<CryptographicException>(() => ring.Decrypt(nonce, ciphertext, tag, opened, authenticated));
    }

    [Fact]
    public void Values_sealed_on_other_threads_carry_other_salts_and_all_open()
    {
        var keys = EncryptionKeysOf.Fresh("k1");
        var values = Enumerable.Range(0, 4).Select(i =>
        {
            byte[]? value = null;
            var thread = new Thread(() => value = keys.Seal([(byte)i], Context));
            thread.Start();
            thread.Join();
            return value!;
        }).ToList();

        Assert.Equal(4, values.Select(v => Convert.ToHexString(SealedValue.SaltOf(v))).Distinct().Count());
        Assert.Equal([0, 1, 2, 3], values.Select(v => (int)keys.Open(v, Context)[0]));
    }

    [Fact]
    public void A_value_of_the_first_format_sealed_with_the_ring_key_itself_still_opens()
    {
        // Version 1 (no salt), as Envio wrote it before per-value keys: key bytes 0..31, nonce 07×12, context "order 1".
        var keys = new KeyRing("k1", new Dictionary<string, byte[]> { ["k1"] = [.. Enumerable.Range(0, 32).Select(b => (byte)b)] });
        var unsalted = Convert.FromBase64String("AQJrMQcHBwcHBwcHBwcHB+baurbS20kend4QdW2dUohuBMdyHGCijqfddvjhPIT3xHLuHOU=");

        Assert.Equal("k1", SealedValue.KeyIdOf(unsalted));
        Assert.Equal("ana.souza@example.com"u8.ToArray(), keys.Open(unsalted, Context));
        unsalted[^1] ^= 0x01;
        Assert.Throws<UndecryptableException>(() => keys.Open(unsalted, Context));
    }

    [Fact]
    public void A_value_with_the_salt_of_another_value_is_refused()
    {
        var keys = EncryptionKeysOf.Fresh("k1");
        var value = keys.Seal("123.456.789-09"u8, Context);
        var other = EncryptionKeysOf.Fresh("k1").Seal("123.456.789-09"u8, Context); // another ring: another salt

        SealedValue.SaltOf(other).CopyTo(value.AsSpan(4, SealedValue.SaltSize));

        Assert.Contains("authentication", Assert.Throws<UndecryptableException>(() => keys.Open(value, Context)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]  // the format version
    [InlineData(3)]  // the key id
    [InlineData(10)] // the salt
    [InlineData(25)] // the nonce
    [InlineData(40)] // the tag
    [InlineData(-1)] // the ciphertext
    public void Any_flipped_byte_is_refused(int position)
    {
        var keys = EncryptionKeysOf.Fresh("k1");
        var value = keys.Seal("123.456.789-09"u8, Context);
        value[position < 0 ? value.Length + position : position] ^= 0x01;

        Assert.ThrowsAny<UndecryptableException>(() => keys.Open(value, Context));
    }

    [Fact]
    public void A_value_sealed_for_another_context_or_key_is_refused_with_the_reason()
    {
        var keys = EncryptionKeysOf.Fresh("k1");
        var value = keys.Seal("secret"u8, Context);

        Assert.Contains("authentication", Assert.Throws<UndecryptableException>(() => keys.Open(value, KeyRing.Context("order 2"))).Message, StringComparison.Ordinal);
        Assert.Contains("authentication", Assert.Throws<UndecryptableException>(() => EncryptionKeysOf.Fresh("k1").Open(value, Context)).Message, StringComparison.Ordinal);
        Assert.Contains("'k1', which is not in the key ring", Assert.Throws<UndecryptableException>(() => EncryptionKeysOf.Fresh("k2").Open(value, Context)).Message, StringComparison.Ordinal);
        Assert.Contains("not an Envio encrypted value", Assert.Throws<UndecryptableException>(() => keys.Open("{\"plain\":1}"u8, Context)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void After_rotation_the_current_key_seals_and_the_older_key_still_opens()
    {
        var oldKey = RandomNumberGenerator.GetBytes(KeyRing.KeySize);
        var before = new KeyRing("2025", new Dictionary<string, byte[]> { ["2025"] = oldKey });
        var after = new KeyRing("2026", new Dictionary<string, byte[]> { ["2025"] = oldKey, ["2026"] = RandomNumberGenerator.GetBytes(KeyRing.KeySize) });
        var old = before.Seal("old"u8, Context);

        var fresh = after.Seal("new"u8, Context);

        Assert.Equal("2026", SealedValue.KeyIdOf(fresh));
        Assert.Equal("old"u8.ToArray(), after.Open(old, Context));
        Assert.Throws<UndecryptableException>(() => before.Open(fresh, Context));
    }

    [Fact]
    public void The_consumer_decodes_a_message_encrypted_with_an_older_key_still_in_the_ring_and_refuses_it_once_the_key_is_gone()
    {
        var oldKey = RandomNumberGenerator.GetBytes(KeyRing.KeySize);
        var newKey = RandomNumberGenerator.GetBytes(KeyRing.KeySize);
        var order = SampleOrders.Create(61_001);
        var envelope = new Envelope(order.OrderId, Orders.Type.WireType, Orders.Type.SchemaVersion, DateTimeOffset.UtcNow, null);
        var delivery = new Delivery(1, 0, EncryptedBody.Properties(envelope),
            EncryptedBody.Seal(new KeyRing("k1", new Dictionary<string, byte[]> { ["k1"] = oldKey }), envelope, Orders.Type.Serialize(order)), false);

        var rotated = Orders.Decode(new KeyRing("k2", new Dictionary<string, byte[]> { ["k1"] = oldKey, ["k2"] = newKey }), delivery, out var problem, out _);
        var retired = Orders.Decode(new KeyRing("k2", new Dictionary<string, byte[]> { ["k2"] = newKey }), delivery, out var retiredProblem, out var exception);

        Assert.Null(problem);
        Assert.Equal(SampleOrders.Describe(order), SampleOrders.Describe(rotated!.Value));
        Assert.Null(retired);
        Assert.Contains("'k1', which is not in the key ring", retiredProblem, StringComparison.Ordinal);
        Assert.IsType<UndecryptableException>(exception);
    }

    [Fact]
    public void The_consumer_refuses_a_plaintext_body_even_when_it_is_a_valid_order()
    {
        var order = SampleOrders.Create(61_002);
        var envelope = new Envelope(order.OrderId, Orders.Type.WireType, Orders.Type.SchemaVersion, DateTimeOffset.UtcNow, null);
        var delivery = new Delivery(1, 0, envelope.ToProperties(WireFormat.ContentType), Orders.Type.Serialize(order), false);

        Assert.Null(Orders.Decode(EncryptionKeysOf.Fresh("k1"), delivery, out var problem, out _));
        Assert.Contains("not encrypted", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void The_ring_reads_its_keys_from_configuration()
    {
        var key = RandomNumberGenerator.GetBytes(KeyRing.KeySize);
        var keys = KeyRing.FromConfiguration(Configuration(("CurrentKeyId", "k2"), ("Keys:k1", Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))), ("Keys:k2", Convert.ToBase64String(key))));

        Assert.Equal("k2", keys.CurrentKeyId);
        Assert.Equal(["k1", "k2"], keys.KeyIds.Order());
    }

    [Theory]
    [InlineData(null, null, "Envio:Encryption:CurrentKeyId is not set")]
    [InlineData("k1", null, "Envio:Encryption:Keys:k1 (the current key) is not set")]
    [InlineData("k1", "c2hvcnQ=", "Envio:Encryption:Keys:k1 is not the base64 of 32 bytes")]
    [InlineData("k1", "not base64 at all!", "Envio:Encryption:Keys:k1 is not the base64 of 32 bytes")]
    public void A_missing_or_malformed_key_stops_start_up_with_a_clear_error_that_does_not_show_the_key(string? current, string? key, string expected)
    {
        var settings = new List<(string, string?)>();
        if (current is not null)
        {
            settings.Add(("CurrentKeyId", current));
        }
        if (key is not null)
        {
            settings.Add(("Keys:k1", key));
        }

        var error = Assert.Throws<InvalidOperationException>(() => KeyRing.FromConfiguration(Configuration([.. settings])));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        if (key is not null)
        {
            Assert.DoesNotContain(key, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Columns_have_a_ring_of_their_own_once_one_is_configured_and_the_message_ring_until_then()
    {
        var message = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var column = RandomNumberGenerator.GetBytes(32);
        using var messageKeys = KeyRing.FromConfiguration(Configuration(("CurrentKeyId", "k1"), ("Keys:k1", message)));

        // A deployment that has not split its keys yet keeps sealing its columns as before.
        Assert.Same(messageKeys, KeyRing.ForColumns(Configuration(("CurrentKeyId", "k1"), ("Keys:k1", message)), messageKeys));

        using var columnKeys = KeyRing.ForColumns(
            Configuration(("CurrentKeyId", "k1"), ("Keys:k1", message), ("Columns:CurrentKeyId", "c1"), ("Columns:Keys:c1", Convert.ToBase64String(column))), messageKeys);
        Assert.Equal("c1", columnKeys.CurrentKeyId);
        Assert.Equal(["c1"], columnKeys.KeyIds);
        var sealedValue = columnKeys.Seal("x"u8, "where"u8);
        Assert.Throws<UndecryptableException>(() => messageKeys.Open(sealedValue, "where"u8));

        var error = Assert.Throws<InvalidOperationException>(() => KeyRing.ForColumns(Configuration(("Columns:CurrentKeyId", "c2")), messageKeys));
        Assert.Contains("Envio:Encryption:Columns:Keys:c2 (the current key) is not set (environment variable Envio__Encryption__Columns__Keys__c2)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_of_the_wrong_length_is_refused() =>
        Assert.Throws<ArgumentException>(() => new KeyRing("k1", new Dictionary<string, byte[]> { ["k1"] = new byte[16] }));

    [Fact]
    public void An_encrypted_message_says_so_in_its_properties()
    {
        var properties = EncryptedBody.Properties(new Envelope(Guid.CreateVersion7(), Orders.Type.WireType, 1, DateTimeOffset.UtcNow, null));

        Assert.Equal(EncryptedBody.Scheme, EncryptedBody.SchemeOf(properties));
        Assert.Equal(EncryptedBody.ContentType, properties.ContentType);
        Assert.Null(EncryptedBody.SchemeOf(new BasicProperties { Headers = new Dictionary<string, object?>() }));
        Assert.Equal(EncryptedBody.Scheme, EncryptedBody.SchemeOf(new BasicProperties
        {
            Headers = new Dictionary<string, object?> { [EncryptedBody.SchemeHeader] = Encoding.UTF8.GetBytes(EncryptedBody.Scheme) }, // as AMQP delivers it
        }));
    }

    private static IConfiguration Configuration(params (string Key, string? Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => KeyValuePair.Create($"{KeyRing.SectionName}:{s.Key}", s.Value))).Build();
}
