using System.Data.Common;
using System.Net.Http.Json;
using System.Text;
using Aspire.Hosting;
using Envio.ConsumerService.Messaging;
using Envio.Contracts;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Security;
using Envio.Tests.Support;
using RabbitMQ.Client;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// Failures injected into the real processes under a steady stream of orders, while the consumer holds unacknowledged
/// deliveries. Each asserts what a user counts on: every order answered 202 is stored as it was sent (its items once
/// each), nothing else is stored, the consumer's own count of new rows is the table's, and only the poison ends up in
/// the error queue. Each test has a stack of its own; the figures go to the test output and to
/// TestResults/reliability.md (<see cref="ReliabilityTable"/>).
/// </summary>
[Collection(AppHostTests.Name)]
public sealed partial class FailureTests
{
    private static readonly TimeSpan Steady = TimeSpan.FromSeconds(3);

    [Fact(Timeout = 600_000)]
    public Task The_broker_killed_with_sigkill_and_restarted_mid_stream_loses_and_duplicates_nothing() =>
        RunAsync("RabbitMQ killed (SIGKILL) and restarted", 100_000, async (app, _, ct) =>
        {
            // The broker dies while the consumer writes a batch, so that the batch commits and its ack cannot go out.
            // Left to timing, a kill mostly lands in a batch window, where nothing is committed yet and the deliveries
            // are simply dropped and redelivered: the consumer is held inside a write until the broker is dead.
            await using (await HoldConsumerInsideAWriteAsync(app, ct))
            {
                await ResourceProcesses.SignalAsync(app, "messaging", "KILL", ct, wholeTree: true);
            }
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            await ResourceProcesses.RestartAsync(app, "messaging", ct);
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
        }, appHostArgs: [$"--ConnectionStrings:enviodb={server.ConnectionString}"], accounting: Accounting.CommitsMayBeUnanswered);
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
        arrivalTimeout: TimeSpan.FromMinutes(1), accounting: Accounting.CommitsMayBeUnanswered,
        appHostArgs: ["--Envio:Topology:RetryDelays:0=00:00:02", "--Envio:Topology:RetryDelays:1=00:00:04", "--Envio:Topology:RetryDelays:2=00:00:06"]);

    /// <summary>
    /// A database that answers but refuses the consumer's writes (INSERT on orders revoked from its runtime role for
    /// 20 s, as a revoked privilege, a read-only failover or a full log would): the first failed batches wait in the
    /// retry queues, a run of them holds the stream, and nothing reaches the error queue.
    /// </summary>
    [Fact(Timeout = 600_000)]
    public Task Writes_refused_for_20_seconds_while_the_database_answers_lose_and_duplicate_nothing() =>
        RunAsync("PostgreSQL refuses the consumer's inserts for 20 s (INSERT revoked from its role; reads answered)", 600_000, async (app, _, ct) =>
        {
            var runtimeRole = new Npgsql.NpgsqlConnectionStringBuilder(await app.GetConnectionStringAsync("enviodb", ct)).Username!;
            await using var owner = Npgsql.NpgsqlDataSource.Create(await app.OwnerConnectionStringAsync(ct));
            await using (var revoke = owner.CreateCommand($"REVOKE INSERT ON orders FROM \"{runtimeRole}\""))
            {
                await revoke.ExecuteNonQueryAsync(ct);
            }
            await Task.Delay(TimeSpan.FromSeconds(20), ct);
            await using var grant = owner.CreateCommand($"GRANT INSERT ON orders TO \"{runtimeRole}\"");
            await grant.ExecuteNonQueryAsync(ct);
            return [];
        }, hitsWorkInFlight: false);

    /// <summary>An operator's pause for 15 s while orders keep arriving, then the resume: each accepted order stored once.</summary>
    [Fact(Timeout = 600_000)]
    public Task Consumers_paused_for_15_seconds_and_resumed_mid_stream_lose_and_duplicate_nothing() =>
        RunAsync("consumers paused for 15 s by an operator, then resumed", 700_000, async (app, _, ct) =>
        {
            using var admin = app.ApiClient();
            using (var pause = await admin.PostAsync(new Uri("/admin/consumers/pause?type=order", UriKind.Relative), null, ct))
            {
                Assert.Equal(System.Net.HttpStatusCode.OK, pause.StatusCode);
            }
            await Task.Delay(TimeSpan.FromSeconds(15), ct);
            using var resume = await admin.PostAsync(new Uri("/admin/consumers/resume?type=order", UriKind.Relative), null, ct);
            Assert.Equal(System.Net.HttpStatusCode.OK, resume.StatusCode);
            return [];
        }, hitsWorkInFlight: false);

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

    /// <summary>
    /// The consumer dies inside a batch's write: that batch was neither committed nor acknowledged, and the broker hands
    /// it (with the rest of what the consumer held) to the restarted consumer. Left to timing, a kill mostly lands
    /// between batches, where an ack sent before its commit would go unnoticed: the consumer is held inside a write
    /// until it is dead. Its lines for every batch it committed have arrived before the kill, so its count of new
    /// rows stays exact.
    /// </summary>
    [Fact(Timeout = 600_000)]
    public Task The_consumer_killed_with_sigkill_mid_batch_and_restarted_loses_and_duplicates_nothing() =>
        RunAsync("consumer killed (SIGKILL) inside a batch's write and restarted", 300_000, async (app, _, ct) =>
        {
            var topology = new TopologyOptions();
            await using (await HoldConsumerInsideAWriteAsync(app, ct))
            {
                await WaitForConsumerLinesAsync(app, ct);
                var held = await BrokerQueues.HeldByConsumersAsync(app, topology.Queue, ct);
                Assert.True(held > 0, "the consumer held no delivery unacknowledged inside its write");
                TestContext.Current.TestOutputHelper?.WriteLine($"killed holding {held} deliveries unacknowledged, one batch of them inside its write");
                await ResourceProcesses.SignalAsync(app, "consumer", "KILL", ct, wholeTree: true);
            }
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            await ResourceProcesses.RestartAsync(app, "consumer", ct);
            return [];
        }, hitsWorkInFlight: false);

    /// <summary>
    /// While the orders table is locked against writes (nothing commits), waits until the consumer's lines name every
    /// row the table holds: its console logger writes from a queue, and a SIGKILL would lose what it still held.
    /// </summary>
    private static async Task WaitForConsumerLinesAsync(DistributedApplication app, CancellationToken ct)
    {
        await using var database = StoredOrders.Connect(await app.OwnerConnectionStringAsync(ct));
        var rows = await StoredOrders.CountAllAsync(database);
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (ConsumerWrites.Sum(app).Inserted != rows)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the consumer's lines name {ConsumerWrites.Sum(app).Inserted} new rows, the table holds {rows}");
            await Task.Delay(200, ct);
        }
    }

    /// <summary>
    /// Invariant 5: one batch in flight per channel. The first batch waits inside its write (one of its orders collides
    /// with a row the test inserted and has not committed); a second batch arrives on the same channel. Had it been
    /// written meanwhile, its multiple-ack would acknowledge the first batch's deliveries too, and the consumer killed
    /// then would lose them. Each accepted order must be stored after the restart.
    /// </summary>
    [Fact(Timeout = 600_000)]
    public async Task A_consumer_killed_while_its_first_batch_waits_loses_nothing_of_it()
    {
        var ct = TestContext.Current.CancellationToken;
        var dataRoot = EnvioAppHost.NewDataRoot();
        await using (var app = await EnvioAppHost.StartAsync(dataRoot, ct, "--Envio:Consumer:Channels=1", "--Envio:Consumer:BatchWindow=00:00:00.500"))
        {
            using var api = app.ApiClient();
            await using var database = StoredOrders.Connect(await app.OwnerConnectionStringAsync(ct));
            var warmUp = SampleOrders.Create(800_000);
            await PostAsync(api, [warmUp], ct);
            Assert.Equal(1, await StoredOrders.WaitForAsync(database, [warmUp.OrderId], TimeSpan.FromMinutes(2)));

            var first = Enumerable.Range(1, 5).Select(i => SampleOrders.Create(800_000 + i)).ToList();
            var second = Enumerable.Range(10, 5).Select(i => SampleOrders.Create(800_000 + i)).ToList();
            await using var connection = await database.OpenConnectionAsync(ct);
            await using (var transaction = await connection.BeginTransactionAsync(ct))
            {
                // An uncommitted row with the first batch's first id: the consumer's insert waits for this transaction.
                await using (var collide = connection.CreateCommand())
                {
                    collide.Transaction = transaction;
                    collide.CommandText = "CREATE TEMP TABLE colliding ON COMMIT DROP AS SELECT * FROM orders LIMIT 1; " +
                        $"UPDATE colliding SET order_id = '{first[0].OrderId}'; INSERT INTO orders SELECT * FROM colliding";
                    await collide.ExecuteNonQueryAsync(ct);
                }
                await PostAsync(api, first, ct);
                await using (var waiters = database.CreateCommand("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"))
                {
                    var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
                    while (Convert.ToInt64(await waiters.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) == 0)
                    {
                        Assert.True(DateTime.UtcNow < deadline, "the consumer's first batch never waited for the uncommitted row");
                        await Task.Delay(50, ct);
                    }
                }

                // The second batch reaches the consumer's buffer. A consumer that wrote it meanwhile would have stored
                // it within a second (its batch window is 0.5 s); this one waits for the first batch, and the wait
                // below, ten times that on a slow machine, runs out.
                await PostAsync(api, second, ct);
                var storedMeanwhile = await StoredOrders.WaitForAsync(database, [.. second.Select(o => o.OrderId)], TimeSpan.FromSeconds(10));
                TestContext.Current.TestOutputHelper?.WriteLine($"second batch stored while the first waited: {storedMeanwhile} of {second.Count}");
                await ResourceProcesses.SignalAsync(app, "consumer", "KILL", ct, wholeTree: true);
                await transaction.RollbackAsync(ct);
            }
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            await ResourceProcesses.RestartAsync(app, "consumer", ct);

            var all = first.Concat(second).Select(o => o.OrderId).ToList();
            Assert.Equal(all.Count, await StoredOrders.WaitForAsync(database, all, TimeSpan.FromMinutes(3)));
        }
        Directory.Delete(dataRoot, recursive: true);
    }

    private static async Task PostAsync(HttpClient api, List<Order> orders, CancellationToken ct)
    {
        using var response = await api.PostAsJsonAsync("/api/orders/batch", orders, WireFormat.Options, ct);
        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
    }

    /// <summary>
    /// Twelve messages that can never be stored, published into the stream as a foreign or broken producer would: not
    /// JSON, a schema version no build writes (a newer one would be deferred, not dead-lettered), an invalid order.
    /// Each must reach the error queue with its reason and block nothing.
    /// </summary>
    private static async Task<List<Guid>> PublishPoisonAsync(IConnection broker, CancellationToken ct)
    {
        await using var channel = await broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct);
        var topology = new TopologyOptions();
        var poison = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            var order = SampleOrders.Create(490_000 + i);
            var (version, body) = (i % 3) switch
            {
                0 => (Orders.Type.SchemaVersion, "{\"orderId\": \"broken"u8.ToArray()),
                1 => (0, Orders.Type.Serialize(order)),
                _ => (Orders.Type.SchemaVersion, Orders.Type.Serialize(order with { Total = order.Total + 1 })),
            };
            var envelope = new Envelope(order.OrderId, Orders.Type.WireType, version, DateTimeOffset.UtcNow, "poison");
            await channel.BasicPublishAsync(topology.Exchange, topology.RoutingKey, true, envelope.ToProperties(WireFormat.ContentType), body, ct);
            poison.Add(order.OrderId);
            await Task.Delay(150, ct);
        }
        return poison;
    }

    private static async Task RunAsync(
        string fault, int seed, Func<DistributedApplication, IConnection, CancellationToken, Task<List<Guid>>> inject,
        TimeSpan? arrivalTimeout = null, string[]? appHostArgs = null, bool hitsWorkInFlight = true, Accounting accounting = Accounting.Exact)
    {
        var ct = TestContext.Current.CancellationToken;
        var dataRoot = EnvioAppHost.NewDataRoot();
        var topology = new TopologyOptions();
        await using (var app = await EnvioAppHost.StartAsync(dataRoot, ConsumerWrites.Enable, ct, appHostArgs ?? []))
        {
            using var api = app.ApiClient(); // no retries: every answer counts
            await using var database = StoredOrders.Connect((await app.OwnerConnectionStringAsync(ct)));
            await using var broker = await app.ConnectToBrokerAsync(ct);

            await using var stream = OrderStream.Start(api, seed);
            await Task.Delay(Steady, ct);
            if (hitsWorkInFlight)
            {
                await WaitForWorkInFlightAsync(app, topology, ct);
            }
            var poison = await inject(app, broker, ct);
            await Task.Delay(Steady, ct);
            await stream.StopAsync();

            var accepted = stream.AcceptedIds;
            var stored = await StoredOrders.WaitForAsync(database, accepted, arrivalTimeout ?? TimeSpan.FromMinutes(3));
            await BrokerQueues.WaitUntilSettledAsync(app, broker, topology, ct); // every redelivery consumed: the counts below are final
            var keys = await EncryptionKeysOf.ColumnsAsync(app);
            var unknown = stream.Unknown.Keys.ToList();
            var unknownStored = await StoredOrders.CountAsync(database, "orders", unknown);
            // A 503 after a confirm timeout does not mean the broker lost the message (invariant 2): it may be stored.
            var refusedStored = await StoredOrders.CountAsync(database, "orders", [.. stream.Refused.Keys]);
            var notAsSent = await StoredNotAsSentAsync(database, keys, stream.Accepted) + await StoredNotAsSentAsync(database, keys, stream.Unknown)
                + await StoredNotAsSentAsync(database, keys, stream.Refused);
            var deadLettered = await TakeErrorQueueAsync(broker, poison.Count, ct);
            var poisonStored = await StoredOrders.CountAsync(database, "orders", poison);
            var itemsWithoutOrder = await StoredOrders.ItemsWithoutTheirOrderAsync(database);
            var rows = await StoredOrders.CountAllAsync(database);
            var (delivered, inserted) = accounting == Accounting.RowsOnly ? (0, 0) : await ConsumerWritesAsync(app, rows, ct);

            ReliabilityTable.Add(new ReliabilityRow(fault, stream.Accepted.Count, stored, notAsSent, stream.Refused.Count, refusedStored,
                stream.Unknown.Count, unknownStored, FoundStored: accounting == Accounting.RowsOnly ? null : delivered - inserted, deadLettered.Count));

            Assert.True(accepted.Count >= 100, $"the stream barely ran: {stream.Summary}");
            Assert.Equal(accepted.Count, stored);                 // 0 lost
            Assert.Equal(0, notAsSent);                           // each stored order (and its items, once each) as it was sent
            Assert.Equal(stored + unknownStored + refusedStored, rows); // nothing else was stored
            Assert.Equal(poison.Order(), deadLettered.Order());   // only the poison in the error queue
            Assert.Equal(0, poisonStored);
            Assert.Equal(0, itemsWithoutOrder);                   // no item outlived a rolled-back order
            switch (accounting)
            {
                case Accounting.Exact:
                    Assert.Equal(rows, inserted);                 // the consumer's new rows are the table's rows
                    break;
                case Accounting.CommitsMayBeUnanswered:
                    // A commit the database made as it went down may never have been answered: the consumer writes the
                    // batch again and finds those orders stored. Never more new rows than rows, and the shortfall is
                    // among what it found stored.
                    Assert.InRange(rows - inserted, 0, delivered - inserted);
                    break;
            }
            if (accounting == Accounting.Exact && hitsWorkInFlight)
            {
                // The broker died holding deliveries the consumer had in hand: it committed them, could not ack them,
                // and was handed them again; the idempotent insert absorbed them.
                Assert.True(delivered - inserted > 0, "no redelivery reached the idempotent insert: the fault met no work in flight");
            }
        }
        Directory.Delete(dataRoot, recursive: true);
    }

    /// <summary>How exactly the consumer's own count of new rows must match the table after the fault.</summary>
    private enum Accounting
    {
        /// <summary>Equal; and some redelivery met the idempotent insert (the broker died with work in the consumer's hands).</summary>
        Exact,

        /// <summary>The database went down: a commit may have happened without its answer reaching the consumer.</summary>
        CommitsMayBeUnanswered,

        /// <summary>
        /// Not measured: replicas were stopped and started again, and a stopped replica's last lines may never reach
        /// the collector (DCP ends its process tree as the host finishes). What is stored is judged by the rows alone.
        /// </summary>
        RowsOnly,
    }

    /// <summary>
    /// Locks the orders table against writes (PostgreSQL's EXCLUSIVE mode: reads go on) and returns once the consumer
    /// waits for that lock inside a batch's transaction. Disposing the result lets the write go on and commit.
    /// </summary>
    private static async Task<IAsyncDisposable> HoldConsumerInsideAWriteAsync(DistributedApplication app, CancellationToken ct)
    {
        var database = StoredOrders.Connect((await app.OwnerConnectionStringAsync(ct)));
        var connection = await database.OpenConnectionAsync(ct);
        var transaction = await connection.BeginTransactionAsync(ct);
        await using (var lockOrders = connection.CreateCommand())
        {
            lockOrders.Transaction = transaction;
            lockOrders.CommandText = "LOCK TABLE orders IN EXCLUSIVE MODE";
            await lockOrders.ExecuteNonQueryAsync(ct);
        }
        await using var waiters = database.CreateCommand("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'orders'::regclass");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Convert.ToInt64(await waiters.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the consumer never started a write under the stream");
            await Task.Delay(10, ct);
        }
        return new HeldWrite(database, connection, transaction);
    }

    private sealed class HeldWrite(DbDataSource database, DbConnection connection, DbTransaction transaction) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await transaction.RollbackAsync();
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
            await database.DisposeAsync();
        }
    }

    /// <summary>
    /// Waits until the consumer holds deliveries it has not acknowledged yet (its channels count them): the fault
    /// injected next meets work in flight, not an idle consumer between batches.
    /// </summary>
    private static async Task WaitForWorkInFlightAsync(DistributedApplication app, TopologyOptions topology, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        long held;
        while ((held = await BrokerQueues.HeldByConsumersAsync(app, topology.Queue, ct)) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the consumer never held unacknowledged deliveries under the stream");
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"before the fault: the consumer holds {held} deliveries of {topology.Queue} unacknowledged");
    }

    /// <summary>
    /// The consumer's committed batches, once its lines for every row have arrived (its console output reaches the
    /// collector asynchronously): deliveries, and new rows among them.
    /// </summary>
    private static async Task<(long Delivered, long Inserted)> ConsumerWritesAsync(DistributedApplication app, long rows, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var writes = ConsumerWrites.Sum(app);
        while (writes.Inserted < rows && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, ct);
            writes = ConsumerWrites.Sum(app);
        }
        return writes;
    }

    /// <summary>Stored orders whose row or items differ from what was sent (items counted, so a doubled item shows).</summary>
    private static async Task<long> StoredNotAsSentAsync(System.Data.Common.DbDataSource database, Envio.Contracts.Security.KeyRing keys, IReadOnlyDictionary<Guid, Order> sent)
    {
        var stored = await StoredOrders.ReadAsync(database, keys, [.. sent.Keys]);
        var items = await StoredOrders.CountAsync(database, "order_items", [.. stored.Keys]);
        var differ = stored.Count(s => SampleOrders.Describe(s.Value.Order) != SampleOrders.Describe(sent[s.Key]));
        return differ + Math.Abs(items - stored.Keys.Sum(id => sent[id].Items.Count));
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
}
