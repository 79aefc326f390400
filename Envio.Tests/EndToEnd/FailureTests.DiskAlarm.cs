using Envio.Tests.Support;

namespace Envio.Tests.EndToEnd;

public sealed partial class FailureTests
{
    /// <summary>
    /// The broker's disk alarm (as when its disk fills) blocks the API's publishing connection for 15 s under the
    /// stream: the API answers 503 meanwhile (a confirm that does not come), nothing answered 202 is lost, and what was
    /// answered 503 but reached the broker once the alarm cleared is stored at most once.
    /// </summary>
    [Fact(Timeout = 600_000)]
    public Task A_broker_disk_alarm_for_15_seconds_mid_stream_loses_and_duplicates_nothing() =>
        RunAsync("RabbitMQ disk alarm for 15 s", 600_000, async (app, _, ct) =>
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
            return [];
        }, hitsWorkInFlight: false);
}
