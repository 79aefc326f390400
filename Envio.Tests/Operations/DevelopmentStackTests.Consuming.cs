using System.Net;
using System.Net.Http.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.AppHost.Operations;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.Tests.Operations;

/// <summary>Pausing and resuming the consumers from the dashboard: judged by the orders in the work queue and the database.</summary>
public sealed partial class DevelopmentStackTests
{
    [Fact]
    public async Task Pause_keeps_orders_in_the_work_queue_and_resume_stores_each_once()
    {
        var ct = TestContext.Current.CancellationToken;
        using var consumer = stack.App.CreateHttpClient("consumer");
        using var api = stack.Api(await MintAsync("send", ct));
        var orders = Enumerable.Range(0, 5).Select(i => SampleOrders.Create(43_001 + i)).ToList();
        var ids = orders.Select(o => o.OrderId).ToList();
        try
        {
            Assert.True((await ExecuteOnConsumerAsync(ConsumingCommands.Pause, ct)).Success);
            await WaitForHealthAsync(consumer, "Degraded", ct);

            foreach (var order in orders)
            {
                using var sent = await api.PostAsJsonAsync("/api/orders", order, ct);
                Assert.Equal(HttpStatusCode.Accepted, sent.StatusCode);
            }
            await Task.Delay(TimeSpan.FromSeconds(3), ct); // time the consumer would need to store them
            Assert.Equal(0, await StoredOrders.CountAsync(stack.Orders, "orders", ids));
            Assert.True(await WorkQueueReadyAsync(ct) >= orders.Count);
        }
        finally
        {
            Assert.True((await ExecuteOnConsumerAsync(ConsumingCommands.Resume, ct)).Success);
        }

        await WaitForHealthAsync(consumer, "Healthy", ct);
        Assert.Equal(orders.Count, await StoredOrders.WaitForAsync(stack.Orders, ids, Arrival));
    }

    private Task<ExecuteCommandResult> ExecuteOnConsumerAsync(string command, CancellationToken ct)
    {
        var consumer = stack.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == "consumer");
        return stack.App.Services.GetRequiredService<ResourceCommandService>().ExecuteCommandAsync(consumer, command, ct);
    }

    private async Task<uint> WorkQueueReadyAsync(CancellationToken ct)
    {
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        return (await channel.QueueDeclarePassiveAsync(_topology.Queue, ct)).MessageCount;
    }

    private static async Task WaitForHealthAsync(HttpClient consumer, string status, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
        string? last = null;
        while (DateTimeOffset.UtcNow < deadline)
        {
            using var health = await consumer.GetAsync(new Uri("/health", UriKind.Relative), ct);
            if ((last = await health.Content.ReadAsStringAsync(ct)) == status)
            {
                return;
            }
            await Task.Delay(250, ct);
        }
        Assert.Fail($"The consumer's /health said '{last}', not '{status}'.");
    }
}
