using System.Text;
using Aspire.Hosting;
using Envio.ConsumerService.Messaging;
using Envio.Contracts.Messaging;
using Envio.Tests.Security;
using Envio.Tests.Support;
using RabbitMQ.Client;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// Failures injected into the real processes under a steady stream of orders. Each asserts what a user counts on:
/// every order answered 202 is stored, none twice, and only the poison ends up in the error queue. Each test has a
/// stack of its own; the figures go to the test output and to TestResults/reliability.md.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class FailureTests
{
    private static readonly TimeSpan Steady = TimeSpan.FromSeconds(3);

    [Fact(Timeout = 600_000)]
    public Task The_broker_killed_with_sigkill_and_restarted_mid_stream_loses_and_duplicates_nothing() =>
        RunAsync("RabbitMQ killed (SIGKILL) and restarted", 100_000, async (app, _, ct) =>
        {
            await ResourceProcesses.SignalAsync(app, "messaging", "KILL", ct, wholeTree: true);
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            await ResourceProcesses.RestartAsync(app, "messaging", ct);
            return [];
        });

    [Fact(Timeout = 600_000)]
    public Task The_database_stopped_for_30_seconds_and_restarted_loses_and_duplicates_nothing() =>
        RunAsync("PostgreSQL stopped for 30 s and restarted", 200_000, async (app, _, ct) =>
        {
            await ResourceProcesses.SignalAsync(app, "postgres", "INT", ct); // fast shutdown: clients are cut off
            await Task.Delay(TimeSpan.FromSeconds(30), ct);
            await ResourceProcesses.RestartAsync(app, "postgres", ct);
            return [];
        });

    [Fact(Timeout = 600_000)]
    public async Task The_sql_server_stopped_for_30_seconds_and_restarted_loses_and_duplicates_nothing()
    {
        Assert.SkipWhen(TdsServer.Unavailable is not null, TdsServer.Unavailable ?? "");
        await using var server = await TdsServer.StartAsync(TestContext.Current.CancellationToken);
        await RunAsync("SQL Server (Babelfish) stopped for 30 s and restarted", 250_000, async (_, _, ct) =>
        {
            await server.StopAsync(ct); // fast shutdown: clients are cut off
            await Task.Delay(TimeSpan.FromSeconds(30), ct);
            await server.ResumeAsync(ct);
            return [];
        }, appHostArgs: [$"--ConnectionStrings:enviodb={server.ConnectionString}"]);
    }

    /// <summary>
    /// An outage longer than the whole retry ladder: had each message spent its own retries, everything that arrived
    /// meanwhile would be in the error queue. The consumer pauses instead (its /health says Degraded), and everything is
    /// stored within a minute of the database's return.
    /// </summary>
    [Fact(Timeout = 600_000)]
    public Task The_database_down_for_three_times_the_retry_ladder_pauses_consuming_and_moves_nothing_to_the_error_queue() =>
        RunAsync("PostgreSQL stopped for 40 s, over 3× the retry ladder (2 s, 4 s, 6 s)", 500_000, async (app, _, ct) =>
        {
            await ResourceProcesses.SignalAsync(app, "postgres", "INT", ct);
            await WaitForConsumerHealthAsync(app, "Degraded", ct); // paused, and saying so
            await Task.Delay(TimeSpan.FromSeconds(40), ct);
            await ResourceProcesses.RestartAsync(app, "postgres", ct);
            return [];
        },
        arrivalTimeout: TimeSpan.FromMinutes(1),
        appHostArgs: ["--Envio:Topology:RetryDelays:0=00:00:02", "--Envio:Topology:RetryDelays:1=00:00:04", "--Envio:Topology:RetryDelays:2=00:00:06"]);

    private static async Task WaitForConsumerHealthAsync(DistributedApplication app, string status, CancellationToken ct)
    {
        using var consumer = app.CreateHttpClient("consumer");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        string? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await consumer.GetStringAsync(new Uri("/health", UriKind.Relative), ct);
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            if (last == status)
            {
                return;
            }
            await Task.Delay(250, ct);
        }
        Assert.Fail($"The consumer's /health never said {status} (last: {last}).");
    }

    [Fact(Timeout = 600_000)]
    public Task The_consumer_killed_with_sigkill_mid_batch_and_restarted_loses_and_duplicates_nothing() =>
        RunAsync("consumer killed (SIGKILL) mid-batch and restarted", 300_000, async (app, _, ct) =>
        {
            await ResourceProcesses.SignalAsync(app, "consumer", "KILL", ct, wholeTree: true);
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            await ResourceProcesses.RestartAsync(app, "consumer", ct);
            return [];
        });

    [Fact(Timeout = 600_000)]
    public Task Poison_messages_mixed_into_the_stream_go_to_the_error_queue_and_block_nothing() =>
        RunAsync("poison messages mixed into the stream", 400_000, async (_, broker, ct) =>
        {
            await using var channel = await broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct);
            var topology = new TopologyOptions();
            var poison = new List<Guid>();
            for (var i = 0; i < 12; i++)
            {
                var order = SampleOrders.Create(490_000 + i);
                var (version, body) = (i % 3) switch
                {
                    0 => (WireFormat.OrderSchemaVersion, "{\"orderId\": \"broken"u8.ToArray()),
                    1 => (99, WireFormat.Serialize(order)),
                    _ => (WireFormat.OrderSchemaVersion, WireFormat.Serialize(order with { Total = order.Total + 1 })),
                };
                var envelope = new Envelope(order.OrderId, WireFormat.OrderType, version, DateTimeOffset.UtcNow, "poison");
                await channel.BasicPublishAsync(topology.Exchange, topology.RoutingKey, true, envelope.ToProperties(WireFormat.ContentType), body, ct);
                poison.Add(order.OrderId);
                await Task.Delay(150, ct);
            }
            return poison;
        });

    private static async Task RunAsync(
        string fault, int seed, Func<DistributedApplication, IConnection, CancellationToken, Task<List<Guid>>> inject,
        TimeSpan? arrivalTimeout = null, string[]? appHostArgs = null)
    {
        var ct = TestContext.Current.CancellationToken;
        var dataRoot = EnvioAppHost.NewDataRoot();
        await using (var app = await EnvioAppHost.StartAsync(dataRoot, ct, appHostArgs ?? []))
        {
            using var api = app.ApiClient(); // no retries: every answer counts
            await using var database = StoredOrders.Connect((await app.GetConnectionStringAsync("enviodb", ct))!);
            await using var broker = await app.ConnectToBrokerAsync(ct);

            await using var stream = OrderStream.Start(api, seed);
            await Task.Delay(Steady, ct);
            var poison = await inject(app, broker, ct);
            await Task.Delay(Steady, ct);
            await stream.StopAsync();

            var accepted = stream.AcceptedIds;
            var stored = await StoredOrders.WaitForAsync(database, accepted, arrivalTimeout ?? TimeSpan.FromMinutes(3));
            var expectedItems = stream.Accepted.Values.Sum(o => o.Items.Count);
            var storedItems = await StoredOrders.CountAsync(database, "order_items", accepted);
            var unknownStored = await StoredOrders.CountAsync(database, "orders", [.. stream.Unknown.Keys]);
            var unknownItems = await StoredOrders.CountAsync(database, "order_items", [.. stream.Unknown.Keys]);
            var unknownExpectedItems = (await StoredOrders.ReadAsync(database, await EncryptionKeysOf.AppAsync(app), [.. stream.Unknown.Keys])).Values.Sum(s =>
                stream.Unknown[s.Order.OrderId].Items.Count);
            var deadLettered = await TakeErrorQueueAsync(broker, poison.Count, ct);
            var poisonStored = await StoredOrders.CountAsync(database, "orders", poison);
            var itemsWithoutOrder = await StoredOrders.ItemsWithoutTheirOrderAsync(database);

            Report($"| {fault} | {stream.Accepted.Count} | {stored} | {accepted.Count - stored} | " +
                $"{storedItems - expectedItems + unknownItems - unknownExpectedItems} | {stream.Refused.Count} | " +
                $"{stream.Unknown.Count} ({unknownStored} stored) | {deadLettered.Count} |");

            Assert.True(accepted.Count >= 100, $"the stream barely ran: {stream.Summary}");
            Assert.Equal(accepted.Count, stored);                 // 0 lost
            Assert.Equal(expectedItems, storedItems);             // every item once: 0 duplicated or partial orders
            Assert.Equal(unknownExpectedItems, unknownItems);     // unanswered orders: stored whole or not at all
            Assert.Equal(poison.Order(), deadLettered.Order());   // only the poison in the error queue
            Assert.Equal(0, poisonStored);
            Assert.Equal(0, itemsWithoutOrder);                   // no item outlived a rolled-back order
        }
        Directory.Delete(dataRoot, recursive: true);
    }

    /// <summary>Every message in the error queue, once none arrived for a while (or the expected number did).</summary>
    private static async Task<List<Guid>> TakeErrorQueueAsync(IConnection broker, int expected, CancellationToken ct)
    {
        var found = new List<Guid>();
        await using var channel = await broker.CreateChannelAsync(cancellationToken: ct);
        var quietSince = DateTime.UtcNow;
        while (DateTime.UtcNow - quietSince < TimeSpan.FromSeconds(expected > found.Count ? 30 : 3))
        {
            var message = await channel.BasicGetAsync(new TopologyOptions().ErrorQueue, autoAck: true, ct);
            if (message is null)
            {
                await Task.Delay(200, ct);
                continue;
            }
            found.Add(Guid.Parse(message.BasicProperties.MessageId!));
            Assert.True(message.BasicProperties.Headers?.ContainsKey(FailureHeaders.Reason),
                $"no reason on {message.BasicProperties.MessageId}: {Encoding.UTF8.GetString(message.Body.Span)}");
            quietSince = DateTime.UtcNow;
        }
        return found;
    }

    private static void Report(string row)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(
            "| fault | accepted (202) | stored | lost | duplicated | refused (503) | unanswered | error queue |");
        TestContext.Current.TestOutputHelper?.WriteLine(row);
        var file = Path.Combine(Repository.Root, "TestResults", "reliability.md");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        lock (typeof(FailureTests))
        {
            File.AppendAllText(file, row + Environment.NewLine);
        }
    }
}
