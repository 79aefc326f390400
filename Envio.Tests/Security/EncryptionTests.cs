using System.Net;
using System.Net.Http.Json;
using System.Text;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Envio.Tests.Support;

namespace Envio.Tests.Security;

/// <summary>
/// Encrypted bodies end to end on the shared stack: whatever cannot be decrypted (plaintext, a key the ring does not
/// have, a flipped byte, a body moved onto another message) goes to the error queue with the reason, unchanged, and
/// never stops the consumer or reaches the database.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class EncryptionTests(EnvioStack stack)
{
    private static readonly TimeSpan ArrivalTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Undecryptable_and_plaintext_messages_go_to_the_error_queue_with_the_reason_and_the_others_are_stored()
    {
        var ct = TestContext.Current.CancellationToken;
        var testStarted = DateTimeOffset.UtcNow; // the stack is shared: only this test's window is judged
        var (plaintext, unknownKey, wrongKey, flipped, moved) =
            (SampleOrders.Create(62_001), SampleOrders.Create(62_002), SampleOrders.Create(62_003), SampleOrders.Create(62_004), SampleOrders.Create(62_005));

        var published = new Dictionary<Guid, byte[]>
        {
            [plaintext.OrderId] = Orders.Type.Serialize(plaintext),
            [unknownKey.OrderId] = Sealed(EncryptionKeysOf.Fresh("retired-2019"), unknownKey),
            [wrongKey.OrderId] = Sealed(EncryptionKeysOf.Fresh(stack.Keys.CurrentKeyId), wrongKey), // same id, another key
            [flipped.OrderId] = Flip(Sealed(stack.Keys, flipped)),
            [moved.OrderId] = Sealed(stack.Keys, moved with { OrderId = Guid.CreateVersion7() }, EnvelopeOf(moved) with { MessageId = Guid.CreateVersion7() }),
        };
        await stack.PublishRawAsync(EnvelopeOf(plaintext).ToProperties(WireFormat.ContentType), published[plaintext.OrderId]);
        foreach (var order in new[] { unknownKey, wrongKey, flipped, moved })
        {
            await stack.PublishRawAsync(EncryptedBody.Properties(EnvelopeOf(order)), published[order.OrderId]);
        }
        var good = SampleOrders.Create(62_006);
        using (var response = await stack.Api.PostAsJsonAsync("/api/orders", good, WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [good.OrderId], ArrivalTimeout));
        await AssertDeadLetteredAsync(plaintext.OrderId, "not encrypted", published);
        await AssertDeadLetteredAsync(unknownKey.OrderId, "'retired-2019', which is not in the key ring", published);
        await AssertDeadLetteredAsync(wrongKey.OrderId, "failed authentication", published);
        await AssertDeadLetteredAsync(flipped.OrderId, "failed authentication", published);
        await AssertDeadLetteredAsync(moved.OrderId, "failed authentication", published);
        Assert.Equal(0, await StoredOrders.CountAsync(stack.Database, "orders", [.. published.Keys]));
        stack.App.AssertNoServiceErrors(testStarted);
    }

    private static Envelope EnvelopeOf(Order order) =>
        new(order.OrderId, Orders.Type.WireType, Orders.Type.SchemaVersion, DateTimeOffset.UtcNow, "encryption-test");

    private static byte[] Sealed(KeyRing keys, Order order, Envelope? envelope = null) =>
        EncryptedBody.Seal(keys, envelope ?? EnvelopeOf(order), Orders.Type.Serialize(order));

    private static byte[] Flip(byte[] body)
    {
        body[^5] ^= 0x20;
        return body;
    }

    /// <summary>In the error queue with the reason, and with the body exactly as published (still encrypted, replayable).</summary>
    private async Task AssertDeadLetteredAsync(Guid messageId, string reasonContains, Dictionary<Guid, byte[]> published)
    {
        var message = await stack.TakeFromErrorQueueAsync(m => m.BasicProperties.MessageId == messageId.ToString(), ArrivalTimeout);
        Assert.True(message is not null, $"{messageId} ({reasonContains}) is not in the error queue.");
        var reason = Encoding.UTF8.GetString((byte[])message.BasicProperties.Headers![FailureHeaders.Reason]!);
        Assert.Contains(reasonContains, reason, StringComparison.Ordinal);
        Assert.Equal(published[messageId], message.Body.ToArray());
    }
}
