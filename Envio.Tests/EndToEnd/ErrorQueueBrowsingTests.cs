using System.Reflection;
using System.Text;
using Envio.ApiService.Messaging;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Tests.Messaging;
using Envio.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// Reading the error queue never counts as a failed delivery (invariant 13): the operator's listing and discard hand
/// every message they looked at and did not take back with a <c>basic.nack</c> (requeue) on the open channel, never by
/// closing the channel with it unacknowledged, which RabbitMQ 4.3 counts against a quorum queue's delivery limit.
/// <para>
/// The mechanism is what is tested, not the outcome on the broker at hand: on RabbitMQ 3.10 (the tests' broker) every
/// return increments <c>x-delivery-count</c>, a nack's as much as a close's (4.3 changed that; before, "incrementing
/// delivery count for every return" was the rule), and nothing drops a message in the error queue, so neither the
/// count nor the queue's content tells a nack from a close. The wire would, but the broker speaks only TLS. So the test
/// watches the channel itself: the operator's connection is opened through a factory that records what is done on each
/// channel it creates (a <see cref="DispatchProxy"/> around the real client, every call forwarded), and the listing's
/// channel must have nacked, with requeue, up to the last message it read, while it was still open and before it was
/// closed; the broker then still holds every message.
/// </para>
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class ErrorQueueBrowsingTests(EnvioStack stack)
{
    [Fact]
    public async Task Listing_and_discarding_hand_back_what_they_read_with_a_requeue_nack_on_the_open_channel_not_by_closing_it()
    {
        var ct = TestContext.Current.CancellationToken;
        var topology = Topologies.Private();
        var names = Orders.Names(topology);
        await Topology.DeclareAsync(stack.Broker, names, ct);
        try
        {
            await using var failures = stack.FailurePublisher(topology);
            var ids = Enumerable.Range(0, 3).Select(_ => Guid.CreateVersion7().ToString()).ToList();
            foreach (var id in ids)
            {
                var delivery = new Delivery(1, 0, new BasicProperties { MessageId = id, Persistent = true }, Encoding.UTF8.GetBytes("{}"), false);
                Assert.Equal(Move.DeadLettered, await failures.DeadLetterAsync(names, delivery, $"failed: {id}", null, ct));
            }
            var calls = new ChannelCalls();
            await using var connection = new AdminConnection(ChannelCalls.Recording(stack.BrokerFactory, calls));
            var admin = new FailedMessages(connection, Microsoft.Extensions.Options.Options.Create(new ErrorQueueOptions()), NullLogger<FailedMessages>.Instance);

            calls.Clear();
            var listed = (await admin.ListAsync(names, 0, 100, ct)).Messages.Select(m => m.MessageId!).ToList();
            Assert.Equal(ids.Order(), listed.Order());

            // Three reads on one channel (tags 1 to 3), handed back at once up to the last.
            AssertHandedBack(calls, lastTag: 3);
            Assert.Equal((uint)ids.Count, await stack.WaitForReadyInPrivateQueueAsync(topology.ErrorQueue, (uint)ids.Count, ct));

            // The discard reads the first (not chosen) and the second (taken) in the queue's order, then stops: the first goes back.
            calls.Clear();
            Assert.True(await admin.DiscardAsync(names, FailedMessageSelection.ById(listed[1]), "browsing-tests", ct));

            AssertHandedBack(calls, lastTag: 1);
            Assert.Equal(2u, await stack.WaitForReadyInPrivateQueueAsync(topology.ErrorQueue, 2, ct));
            Assert.Equal(new[] { listed[0], listed[2] }.Order(), (await admin.ListAsync(names, 0, 100, ct)).Messages.Select(m => m.MessageId!).Order());
        }
        finally
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            await Topologies.DeleteAsync(channel, topology);
        }
    }

    /// <summary>
    /// The channel that read the error queue nacked (multiple, requeue) up to <paramref name="lastTag"/> while open,
    /// before it was closed, and returned nothing any other way.
    /// </summary>
    private static void AssertHandedBack(ChannelCalls calls, ulong lastTag)
    {
        var reading = calls.Snapshot().Where(c => !c.Completed).GroupBy(c => c.Channel).Single(g => g.Any(c => c.Method == nameof(IChannel.BasicGetAsync))).ToList();
        var nack = Assert.Single(reading, c => c.Method == nameof(IChannel.BasicNackAsync));
        Assert.Equal((lastTag, true, true), ((ulong)nack.Arguments[0]!, (bool)nack.Arguments[1]!, (bool)nack.Arguments[2]!));
        Assert.True(nack.Open, "the nack was sent on a closed channel");
        Assert.DoesNotContain(reading, c => c.Method == nameof(IChannel.BasicRejectAsync));
        var closed = reading.FindIndex(c => c.Method is nameof(IChannel.CloseAsync) or nameof(IAsyncDisposable.DisposeAsync) or nameof(IDisposable.Dispose));
        Assert.True(closed < 0 || reading.IndexOf(nack) < closed, "the channel was closed before it handed the messages back");
    }
}
