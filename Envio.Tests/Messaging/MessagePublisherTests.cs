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

    /// <summary>
    /// The broker's memory alarm holds a published message unread: its confirm cannot come in time, so the publish
    /// fails. The message is in flight all the same, and arrives once the alarm clears: under its own id, once, and
    /// nothing under another id (invariant 2: a timed-out publish is never compensated under a new id).
    /// </summary>
    [Fact]
    public async Task A_confirm_that_does_not_come_in_time_is_a_failure_never_a_success()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        // A connection of its own: the alarm blocks the connections that publish, and the stack's is everyone's.
        await using var connection = await stack.App.ConnectToBrokerAsync(ct);
        var publisher = new MessagePublisher(connection, stack.Admin,
            Options.Create(new PublisherOptions { ConfirmTimeout = TimeSpan.FromSeconds(3), Channels = 1 }),
            stack.Keys, new UnroutableTypes(), new QueueMismatches(NullLogger<QueueMismatches>.Instance), NullLogger<MessagePublisher>.Instance);
        try
        {
            // Channel and topology first, so that what the alarm holds up is the message, not the declaration.
            var warmUp = SampleOrders.Create(8_000);
            await publisher.PublishOrdersAsync(topology, [Message(warmUp)], ct);

            var late = SampleOrders.Create(8_001);
            PublishFailedException failure;
            await using (await BrokerControl.MemoryAlarmAsync(stack.App, ct))
            {
                failure = await Assert.ThrowsAsync<PublishFailedException>(() => publisher.PublishOrdersAsync(topology, [Message(late)], ct));
            }
            Assert.Contains("did not confirm", failure.Message, StringComparison.Ordinal);

            // A marker confirmed on the same (only) channel comes after everything published before it on that channel.
            // Markers whose own confirm is late again (the alarm clearing) are tried again; they may arrive too.
            var markers = new List<Guid>();
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
            for (var seed = 8_002; ; seed++)
            {
                var marker = SampleOrders.Create(seed);
                markers.Add(marker.OrderId);
                try
                {
                    await publisher.PublishOrdersAsync(topology, [Message(marker)], ct);
                    break;
                }
                catch (PublishFailedException) when (DateTime.UtcNow < deadline)
                {
                }
            }

            var arrived = await DrainAsync(topology.Queue, ct);
            Assert.Equal(1, arrived.Count(id => id == late.OrderId));
            Assert.Equal(1, arrived.Count(id => id == warmUp.OrderId));
            var known = markers.Append(late.OrderId).Append(warmUp.OrderId).ToHashSet();
            Assert.DoesNotContain(arrived, id => !known.Contains(id));
            Assert.Equal(arrived.Count, arrived.Distinct().Count());
        }
        finally
        {
            await publisher.DisposeAsync();
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    [Fact]
    public async Task Requests_publishing_while_the_connection_is_cut_fail_as_503_and_never_otherwise()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private(); // no consumer reads it: what arrived is counted in the queue itself
        var published = new System.Collections.Concurrent.ConcurrentBag<Guid>();
        var refused = 0;
        var unexpected = new System.Collections.Concurrent.ConcurrentQueue<Exception>();

        try
        {
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
                        var orders = Enumerable.Range(0, 4).Select(m => SampleOrders.Create(600_000 + cut * 100_000 + worker * 5_000 + i * 4 + m)).ToList();
                        try
                        {
                            await publisher.PublishOrdersAsync(topology, [.. orders.Select(Message)], ct);
                            foreach (var order in orders)
                            {
                                published.Add(order.OrderId);
                            }
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
            Assert.True(!published.IsEmpty && refused > 0, $"published {published.Count} messages, refused {refused} requests: the cuts did not fall mid-stream");
            // Returned is confirmed: every message of a request that returned (the API's 202) is in the queue, once.
            var arrived = await DrainAsync(topology.Queue, ct);
            var missing = published.Except(arrived).ToList();
            Assert.True(missing.Count == 0, $"{missing.Count} of {published.Count} messages published without error are not in the queue, e.g. {missing.FirstOrDefault()}");
            Assert.Equal(arrived.Count, arrived.Distinct().Count());
        }
        finally
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    [Fact]
    public async Task Returns_once_the_broker_confirmed_every_message_of_a_pipelined_batch()
    {
        await using var publisher = Publisher(TimeSpan.FromSeconds(10));
        var orders = Enumerable.Range(0, 300).Select(i => SampleOrders.Create(8_100 + i)).ToList();

        await publisher.PublishOrdersAsync(stack.Topology, orders.Select(Message).ToList(), TestContext.Current.CancellationToken);

        Assert.Equal(300, await StoredOrders.WaitForAsync(stack.Database, orders.Select(o => o.OrderId).ToList(), TimeSpan.FromSeconds(60)));
    }

    /// <summary>
    /// Takes every message of a queue no consumer reads and returns their ids in queue order. A quorum queue confirms a
    /// message once it is applied, so what was confirmed is there to take; the passive declare's count (no statistics
    /// lag) must agree.
    /// </summary>
    private async Task<List<Guid>> DrainAsync(string queue, CancellationToken ct)
    {
        var ready = await BrokerQueues.ReadyAsync(stack.Broker, queue, ct);
        var ids = await BrokerQueues.TakeIdsAsync(stack.Broker, queue, ct);
        Assert.Equal((int)ready, ids.Count);
        return ids;
    }
}
