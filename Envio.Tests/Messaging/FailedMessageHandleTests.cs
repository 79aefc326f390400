using System.Text;
using Envio.ApiService.Messaging;
using Envio.Messaging;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>The handle names one failed message by what it is, not where it waits: the same message, the same handle.</summary>
public sealed class FailedMessageHandleTests
{
    private static readonly byte[] Body = Encoding.UTF8.GetBytes("""{"orderId":"a"}""");

    [Fact]
    public void The_same_message_has_the_same_well_formed_handle()
    {
        var handle = FailedMessageHandle.Of(Failed("id-1", "timeout"), Body);
        Assert.Equal(handle, FailedMessageHandle.Of(Failed("id-1", "timeout"), Body.ToArray()));
        Assert.True(FailedMessageHandle.IsWellFormed(handle), handle);
    }

    [Fact]
    public void Two_failures_of_one_id_have_two_handles()
    {
        Assert.NotEqual(FailedMessageHandle.Of(Failed("id-1", "timeout"), Body), FailedMessageHandle.Of(Failed("id-1", "invalid"), Body));
    }

    [Fact]
    public void Messages_without_an_id_are_told_apart_by_their_bodies_and_an_absent_id_is_not_an_empty_one()
    {
        var withoutId = FailedMessageHandle.Of(Failed(null, "refused"), Body);
        Assert.NotEqual(withoutId, FailedMessageHandle.Of(Failed(null, "refused"), Encoding.UTF8.GetBytes("""{"orderId":"b"}""")));
        Assert.NotEqual(withoutId, FailedMessageHandle.Of(Failed("", "refused"), Body));
    }

    [Theory]
    [InlineData("0193a6a0-7b1c-7cc2-9d51-3f1e2a4b5c6d")]
    [InlineData("5F0C2E9B7A41D3C86E1F0A2B9C4D7E58")]
    [InlineData("5f0c2e9b7a41d3c86e1f0a2b9c4d7e5")]
    [InlineData("")]
    public void Anything_else_is_not_a_handle(string text) => Assert.False(FailedMessageHandle.IsWellFormed(text));

    private static BasicProperties Failed(string? messageId, string reason) => new()
    {
        MessageId = messageId,
        Type = "envio.order",
        Headers = new Dictionary<string, object?> { [FailureHeaders.Reason] = Encoding.UTF8.GetBytes(reason), [FailureHeaders.Attempts] = 4 },
    };
}
