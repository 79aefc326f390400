using Envio.ApiService.Messaging;
using Envio.Contracts.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Envio.Tests.Messaging;

/// <summary>The publisher against the real broker: confirmed means returned; anything else is a failure.</summary>
[Collection(AppHostTests.Name)]
public sealed class OrderPublisherTests(EnvioStack stack)
{
    private OrderPublisher Publisher(TimeSpan confirmTimeout) => new(
        stack.Broker,
        Options.Create(new PublisherOptions { ConfirmTimeout = confirmTimeout }),
        Options.Create(stack.Topology),
        stack.Keys,
        NullLogger<OrderPublisher>.Instance);

    private static (Envelope, Order) Message(Order order) =>
        (new Envelope(order.OrderId, WireFormat.OrderType, WireFormat.OrderSchemaVersion, DateTimeOffset.UtcNow, null), order);

    [Fact]
    public async Task A_confirm_that_does_not_come_in_time_is_a_failure_never_a_success()
    {
        await using var publisher = Publisher(TimeSpan.FromTicks(1));

        var failure = await Assert.ThrowsAsync<PublishFailedException>(() =>
            publisher.PublishAsync([Message(SampleOrders.Create(8_001))], TestContext.Current.CancellationToken));

        Assert.Contains("did not confirm", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Returns_once_the_broker_confirmed_every_message_of_a_pipelined_batch()
    {
        await using var publisher = Publisher(TimeSpan.FromSeconds(10));
        var orders = Enumerable.Range(0, 300).Select(i => SampleOrders.Create(8_100 + i)).ToList();

        await publisher.PublishAsync(orders.Select(Message).ToList(), TestContext.Current.CancellationToken);

        Assert.Equal(300, await StoredOrders.WaitForAsync(stack.Database, orders.Select(o => o.OrderId).ToList(), TimeSpan.FromSeconds(60)));
    }
}
