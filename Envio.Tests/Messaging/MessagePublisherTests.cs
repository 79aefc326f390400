using Envio.ApiService.Messaging;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>The publisher against the real broker: confirmed means returned; anything else is a failure.</summary>
[Collection(AppHostTests.Name)]
public sealed class MessagePublisherTests(EnvioStack stack)
{
    private MessagePublisher Publisher(TimeSpan confirmTimeout) => new(
        stack.Broker,
        stack.Admin,
        Options.Create(new PublisherOptions { ConfirmTimeout = confirmTimeout }),
        stack.Keys,
        new UnroutableTypes(),
        new QueueMismatches(NullLogger<QueueMismatches>.Instance),
        NullLogger<MessagePublisher>.Instance);

    private static (Envelope, Order) Message(Order order) => (Orders.Envelope(order), order);

    [Fact]
    public async Task A_confirm_that_does_not_come_in_time_is_a_failure_never_a_success()
    {
        await using var publisher = Publisher(TimeSpan.FromTicks(1));

        var failure = await Assert.ThrowsAsync<PublishFailedException>(() =>
            publisher.PublishOrdersAsync(stack.Topology, [Message(SampleOrders.Create(8_001))], TestContext.Current.CancellationToken));

        Assert.Contains("did not confirm", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_publishing_while_the_connection_is_cut_fail_as_503_and_never_otherwise()
    {
        var ct = TestContext.Current.CancellationToken;
        var (published, refused) = (0, 0);
        var unexpected = new System.Collections.Concurrent.ConcurrentQueue<Exception>();

        // Ten cuts, each under sixteen requests of a few messages at a time: each request must end confirmed or as
        // PublishFailedException (the API's 503), whatever channel it was using when the connection broke under it.
        for (var cut = 0; cut < 10; cut++)
        {
            var connection = await stack.App.ConnectToBrokerAsync(ct);
            await using var publisher = new MessagePublisher(connection, stack.Admin,
                Options.Create(new PublisherOptions { ConfirmTimeout = TimeSpan.FromSeconds(5), Channels = 2 }),
                stack.Keys, new UnroutableTypes(), new QueueMismatches(NullLogger<QueueMismatches>.Instance), NullLogger<MessagePublisher>.Instance);
            using var stop = new CancellationTokenSource();
            var requests = Enumerable.Range(0, 16).Select(worker => Task.Run(async () =>
            {
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    try
                    {
                        await publisher.PublishOrdersAsync(stack.Topology,
                            [.. Enumerable.Range(0, 4).Select(m => Message(SampleOrders.Create(600_000 + cut * 100_000 + worker * 5_000 + i * 4 + m)))], ct);
                        Interlocked.Increment(ref published);
                    }
                    catch (PublishFailedException)
                    {
                        Interlocked.Increment(ref refused);
                    }
                    catch (Exception e)
                    {
                        unexpected.Enqueue(e);
                    }
                }
            }, ct)).ToList();
            await Task.Delay(TimeSpan.FromMilliseconds(300 + 37 * cut), ct);
            await connection.AbortAsync(ct);
            await Task.Delay(TimeSpan.FromMilliseconds(300), ct);
            await stop.CancelAsync();
            await Task.WhenAll(requests);
            await connection.DisposeAsync();
        }

        Assert.True(unexpected.IsEmpty, $"{unexpected.Count} requests failed otherwise, e.g. {unexpected.FirstOrDefault()}");
        Assert.True(published > 0 && refused > 0, $"published {published}, refused {refused}: the cuts did not fall mid-stream");
    }

    [Fact]
    public async Task Returns_once_the_broker_confirmed_every_message_of_a_pipelined_batch()
    {
        await using var publisher = Publisher(TimeSpan.FromSeconds(10));
        var orders = Enumerable.Range(0, 300).Select(i => SampleOrders.Create(8_100 + i)).ToList();

        await publisher.PublishOrdersAsync(stack.Topology, orders.Select(Message).ToList(), TestContext.Current.CancellationToken);

        Assert.Equal(300, await StoredOrders.WaitForAsync(stack.Database, orders.Select(o => o.OrderId).ToList(), TimeSpan.FromSeconds(60)));
    }
}
