using Envio.Tests.Support;

namespace Envio.Tests.EndToEnd;

public sealed partial class FailureTests
{
    /// <summary>
    /// The broker's disk alarm (as when its disk fills) blocks the API's publishing connection for 15 s under the
    /// stream: the API answers 503 meanwhile (a confirm that does not come), nothing answered 202 is lost, and what was
    /// answered 503 but reached the broker once the alarm cleared is stored at most once. Then poison is mixed into
    /// the stream (one stack for both faults): only the poison reaches the error queue, and it blocks nothing.
    /// </summary>
    [Fact(Timeout = 600_000)]
    public Task A_broker_disk_alarm_for_15_seconds_and_then_poison_mid_stream_lose_and_duplicate_nothing_and_block_nothing() =>
        RunAsync("RabbitMQ disk alarm for 15 s, then 12 poison messages mixed into the stream", 600_000, async (app, broker, ct) =>
        {
            await using (await BrokerControl.DiskAlarmAsync(app, ct))
            {
                // The alarm took hold: the broker blocks the connection the stream publishes on.
                var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
                while (!(await RabbitMQCtl.RunAsync(app.Nodes()[0], ct, "list_connections", "--no-table-headers", "state"))
                    .Split('\n').Any(state => state.Trim() == "blocked"))
                {
                    Assert.True(DateTime.UtcNow < deadline, "the disk alarm blocked no connection");
                    await Task.Delay(200, ct);
                }
                await Task.Delay(TimeSpan.FromSeconds(15), ct);
            }
            return await PublishPoisonAsync(broker, ct);
        }, hitsWorkInFlight: false);
}
