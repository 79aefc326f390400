using System.Data.Common;
using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Orders;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Envio.Tests.Messaging;

/// <summary>
/// Outages of the test's own PostgreSQL database, real ones, against the real consumer: nothing accepted reaches the
/// error queue because the database was away or would not write, and everything is stored once it is back.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class StoreOutageTests(EnvioStack stack) : IAsyncLifetime
{
    private readonly string _database = $"outage_tests_{Guid.NewGuid():N}";
    private readonly string _role = $"outage_writer_{Guid.NewGuid():N}"[..28];
    private NpgsqlDataSource _source = null!;
    private NpgsqlDataSource _reads = null!; // the test's own reads: unpooled, so no session the test ends is reused

    public async ValueTask InitializeAsync()
    {
        await AdminAsync($"CREATE DATABASE {_database}");
        _source = NpgsqlDataSource.Create(DatabaseConnectionString);
        _reads = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(DatabaseConnectionString) { Pooling = false }.ConnectionString);
        await Store.MigrateAsync(default);
    }

    public async ValueTask DisposeAsync()
    {
        await _source.DisposeAsync();
        await _reads.DisposeAsync();
        await AdminAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        await AdminAsync($"DROP ROLE IF EXISTS {_role}");
    }

    /// <summary>
    /// A database outage longer than the broker lets a consumer hold a delivery (its <c>consumer_timeout</c>, after which
    /// RabbitMQ 4.3 cancels the consumer and earlier versions close its channel): the consumer hands the batch and its
    /// buffer back before that, stops consuming while the database is away, and consumes again when it answers. The
    /// database refuses every connection (<c>ALLOW_CONNECTIONS false</c>, its sessions ended), so the write and the
    /// probe both fail, and the hold limit is shortened to seconds. (Invariant 19.)
    /// </summary>
    [Fact]
    public async Task A_batch_held_through_an_outage_past_the_hold_limit_goes_back_to_its_queue_and_is_stored_when_the_database_answers()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync();
        await pipeline.StartConsumerAsync(store: Store, options: new ConsumerOptions
        {
            Channels = 1,
            QuickRetries = 0,
            OutageProbeDelay = TimeSpan.FromMilliseconds(200),
            OutageProbeMaxDelay = TimeSpan.FromMilliseconds(500),
            OutageHoldLimit = TimeSpan.FromSeconds(3),
        });
        var orders = Enumerable.Range(0, 5).Select(i => SampleOrders.Create(95_000 + i)).ToList();

        await RefuseConnectionsAsync(true);
        await pipeline.PublishAsync(orders.Select(o => InProcessPipeline.Message(o)), ct);

        // Handed back: all five ready in the queue again, nobody consuming while the database is away, nothing moved.
        var (ready, consumers) = await WaitForQueueAsync(pipeline.Names.Queue, q => q is (5, 0), ct);
        Assert.Equal((5u, 0u), (ready, consumers));
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(pipeline.Topology.ErrorQueue, ct));
        Assert.Contains(pipeline.ConsumerLog.Collector.GetSnapshot(), r => r.Message.Contains("handed back", StringComparison.Ordinal));

        await RefuseConnectionsAsync(false);

        Assert.Equal(5, await StoredOrders.WaitForAsync(_reads, [.. orders.Select(o => o.OrderId)], TimeSpan.FromSeconds(30)));
        Assert.Equal((0u, 1u), await WaitForQueueAsync(pipeline.Names.Queue, q => q is (0, 1), ct));
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(pipeline.Topology.ErrorQueue, ct));
        Assert.Equal(HealthStatus.Healthy, (await pipeline.Consumer.CheckHealthAsync(new HealthCheckContext(), ct)).Status);
    }

    /// <summary>
    /// A database that answers queries but takes no writes (a standby after a failover: every new session read-only,
    /// 25006) is an outage, not the messages' fault: the probe writes and commits, so it sees it. With a retry ladder
    /// of two 200 ms steps, a probe that only asked <c>SELECT 1</c> would send the whole stream to the error queue.
    /// </summary>
    [Fact]
    public async Task A_database_that_answers_but_takes_no_writes_holds_the_stream_and_moves_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var pipeline = await StartAsync(Store);
        var orders = Enumerable.Range(0, 20).Select(i => SampleOrders.Create(96_000 + i)).ToList();

        await AdminAsync($"ALTER DATABASE {_database} SET default_transaction_read_only = on; " +
            $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{_database}'");
        await pipeline.PublishAsync(orders.Select(o => InProcessPipeline.Message(o)), ct);

        var held = await WaitForDegradedAsync(pipeline, ct);
        await Task.Delay(TimeSpan.FromSeconds(2), ct); // five times the retry ladder
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(pipeline.Topology.ErrorQueue, ct));
        Assert.Contains("takes no writes", held.Description, StringComparison.Ordinal);

        await AdminAsync($"ALTER DATABASE {_database} RESET default_transaction_read_only; " +
            $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{_database}'");

        await AssertAllStoredOnceAsync(pipeline, _reads, orders, ct);
    }

    /// <summary>
    /// A failover mid-batch, forced step by step. (1) A commit whose outcome the consumer cannot know: the primary waits
    /// for a synchronous standby that never answers (the batch is durable locally, not yet visible), and the session is
    /// ended there, as a failover ends it: the server only warns that the transaction "has already committed locally"
    /// and closes the connection, so the COMMIT gets no answer. (2) The server then answers but takes no writes
    /// (read-only, 25006), as a demoted primary or a standby does. (3) A new primary takes writes. The lost commit is
    /// not the messages' fault and the read-only server is an outage: the batch is held, nothing is moved, and the
    /// batch that did commit is absorbed when written again (without the store's duplicate handling its five orders end
    /// in the error queue): every order stored once. Only this test's database waits for the standby: the server's
    /// default becomes <c>synchronous_commit = local</c> meanwhile.
    /// </summary>
    [Fact]
    public async Task A_failover_mid_batch_with_a_commit_of_unknown_outcome_then_a_read_only_server_stores_each_order_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var orders = Enumerable.Range(0, 20).Select(i => SampleOrders.Create(99_000 + i)).ToList();
        await AdminAsync($"ALTER DATABASE {_database} SET synchronous_commit = on");
        try
        {
            await AdminAsync("ALTER SYSTEM SET synchronous_commit = local");
            await AdminAsync("ALTER SYSTEM SET synchronous_standby_names = 'envio_standby_that_never_answers'");
            await AdminAsync("SELECT pg_reload_conf()");
            await using var pipeline = await StartAsync(Store);

            await pipeline.PublishAsync(orders.Select(o => InProcessPipeline.Message(o)), ct);

            // (1) The consumer's commit waits for the standby: its batch is written, and nobody has seen it yet.
            await WaitUntilAsync($"SELECT count(*) FROM pg_stat_activity WHERE datname = '{_database}' AND wait_event = 'SyncRep'", ct);
            Assert.Equal(0, await StoredOrders.CountAllAsync(_reads));
            // (2) The failover: the session ends inside its commit, and the server comes back read-only.
            await AdminAsync($"ALTER DATABASE {_database} SET default_transaction_read_only = on");
            await AdminAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{_database}'");

            var held = await WaitForDegradedAsync(pipeline, ct);
            Assert.Contains("takes no writes", held.Description, StringComparison.Ordinal);
            // The commit the consumer saw fail had happened: that batch (whatever filled its window, at most a batch) is
            // stored, and nothing went to the error queue.
            Assert.InRange(await StoredOrders.CountAllAsync(_reads), 1, ConsumerBatchSize);
            await Task.Delay(TimeSpan.FromSeconds(2), ct); // five times the retry ladder
            Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(pipeline.Topology.ErrorQueue, ct));

            // (3) A new primary: writes taken, no standby waited for.
            await ResetFailoverSettingsAsync();
            await AdminAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{_database}'");

            await AssertAllStoredOnceAsync(pipeline, _reads, orders, ct);
        }
        finally
        {
            await ResetFailoverSettingsAsync();
        }
    }

    /// <summary>
    /// Invariant 10: the consumer's memory is bounded by its prefetch, not by the backlog. With the database away the
    /// consumer holds what it was handed; a backlog of 600 orders of a thousand items each (about 45 MB), with a
    /// prefetch of 10, must stay in the broker: the broker's own counts say the consumer holds exactly 10 and 590 are
    /// ready, and the test process's managed heap grows by a small part of the backlog. Mutation: consuming without
    /// <c>basic.qos</c> (no prefetch) hands the consumer the whole backlog, and both fail.
    /// </summary>
    [Fact]
    public async Task While_the_database_is_away_a_backlog_far_larger_than_the_prefetch_stays_in_the_broker_and_out_of_memory()
    {
        var ct = TestContext.Current.CancellationToken;
        const ushort prefetch = 10;
        const int backlog = 600;
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync();
        var backlogBytes = await PublishLargeOrdersAsync(pipeline, backlog, ct);
        await RefuseConnectionsAsync(true);
        var before = GC.GetTotalMemory(forceFullCollection: true);

        await pipeline.StartConsumerAsync(store: Store, options: new ConsumerOptions
        {
            Channels = 1,
            Prefetch = prefetch,
            BatchSize = 5,
            QuickRetries = 0,
            OutageProbeDelay = TimeSpan.FromMilliseconds(200),
            OutageProbeMaxDelay = TimeSpan.FromMilliseconds(500),
        });
        await WaitForDegradedAsync(pipeline, ct);
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        (long Held, uint Ready) counts;
        while ((counts = (await BrokerQueues.HeldByConsumersAsync(stack.App, pipeline.Names.Queue, ct), await stack.ReadyInPrivateQueueAsync(pipeline.Names.Queue, ct)))
            != (prefetch, backlog - prefetch) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, ct);
        }
        var grown = GC.GetTotalMemory(forceFullCollection: true) - before;
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"backlog {backlog} messages, {backlogBytes / 1_000_000.0:0.0} MB; prefetch {prefetch}: the consumer holds {counts.Held}, " +
            $"{counts.Ready} ready in the broker; managed heap {grown / 1_000_000.0:+0.0;-0.0} MB");

        Assert.Equal(((long)prefetch, (uint)(backlog - prefetch)), (counts.Held, counts.Ready));
        Assert.True(grown < backlogBytes / 5, $"the heap grew by {grown:N0} bytes while the backlog is {backlogBytes:N0}");
        await pipeline.DisposeConsumerAsync();
    }

    /// <summary>Publishes orders of the most items allowed, SKUs of the longest length, in chunks; returns their JSON's bytes.</summary>
    private static async Task<long> PublishLargeOrdersAsync(InProcessPipeline pipeline, int count, CancellationToken ct)
    {
        long bytes = 0;
        for (var chunk = 0; chunk < count; chunk += 50)
        {
            var orders = Enumerable.Range(chunk, Math.Min(50, count - chunk)).Select(i => SampleOrders.Create(94_000 + i, items: OrderValidator.MaxItems))
                .Select(o => o with { Items = [.. o.Items.Select(item => item with { Sku = item.Sku.PadRight(OrderValidator.MaxSkuLength, 'x') })] })
                .ToList();
            bytes += orders.Sum(o => (long)System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(o).Length);
            await pipeline.PublishAsync(orders.Select(o => InProcessPipeline.Message(o)), ct);
        }
        return bytes;
    }

    private async Task ResetFailoverSettingsAsync()
    {
        await AdminAsync($"ALTER DATABASE {_database} RESET default_transaction_read_only");
        await AdminAsync("ALTER SYSTEM RESET synchronous_standby_names");
        await AdminAsync("ALTER SYSTEM RESET synchronous_commit");
        await AdminAsync("SELECT pg_reload_conf()");
    }

    /// <summary>Polls a count on the server until it is above zero (a minute's ceiling).</summary>
    private async Task WaitUntilAsync(string countSql, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        while (Convert.ToInt64(await server.CreateCommand(countSql).ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"nothing matched within a minute: {countSql}");
            await Task.Delay(100, ct);
        }
    }

    /// <summary>
    /// A database that takes writes, but not one type's (INSERT on <c>orders</c> revoked from the consumer's role,
    /// 42501): the probe's write commits, so only the run of failed batches shows it. After three in a row the
    /// batches are held and written again, not moved; when the privilege is back they are stored.
    /// </summary>
    [Fact]
    public async Task A_run_of_failed_batches_while_the_database_takes_writes_holds_the_stream_and_moves_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        await AdminAsync($"CREATE ROLE {_role} LOGIN PASSWORD '{_role}'; GRANT CONNECT, TEMPORARY ON DATABASE {_database} TO {_role}");
        await DatabaseAsync($"GRANT USAGE ON SCHEMA public TO {_role}; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {_role}; " +
            $"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {_role}; REVOKE INSERT ON orders FROM {_role}");
        var asRole = new NpgsqlConnectionStringBuilder(DatabaseConnectionString) { Username = _role, Password = _role }.ConnectionString;
        await using var roleSource = NpgsqlDataSource.Create(asRole);
        await using var pipeline = await StartAsync(TestStore.Postgres(roleSource, asRole, stack.Keys, new ConsumerIdentity("outage-tests")));
        var orders = Enumerable.Range(0, 20).Select(i => SampleOrders.Create(97_000 + i)).ToList();

        await pipeline.PublishAsync(orders.Select(o => InProcessPipeline.Message(o)), ct);

        var held = await WaitForDegradedAsync(pipeline, ct);
        await Task.Delay(TimeSpan.FromSeconds(2), ct); // five times the retry ladder
        Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(pipeline.Topology.ErrorQueue, ct));
        Assert.Contains("Writing orders fails while the database takes writes", held.Description, StringComparison.Ordinal);
        Assert.Contains("permission denied", held.Description, StringComparison.Ordinal);

        await DatabaseAsync($"GRANT INSERT ON orders TO {_role}");

        await AssertAllStoredOnceAsync(pipeline, _reads, orders, ct);
    }

    /// <summary>
    /// The same on SQL Server (Babelfish here, which has REVOKE but no DENY): the consumer's own login, granted what it
    /// writes with, loses INSERT on <c>dbo.orders</c> (229 on SQL Server); the stream is held, not moved, and stored
    /// when the permission is back.
    /// </summary>
    [Fact]
    public async Task A_run_of_failed_batches_on_sql_server_holds_the_stream_and_moves_nothing()
    {
        if (TestSqlServer.Unavailable is { } reason)
        {
            Assert.Skip(reason);
        }
        var ct = TestContext.Current.CancellationToken;
        var database = await TestSqlServer.CreateDatabaseAsync(TestSqlServer.ConnectionString!, "outage_tests");
        var login = _role;
        try
        {
            await TestStore.SqlServer(database, stack.Keys, new ConsumerIdentity("outage-tests")).MigrateAsync(ct);
            await TestSqlServer.ExecuteAsync(database, "master", $"CREATE LOGIN [{login}] WITH PASSWORD = N'{login}_P1'");
            await TestSqlServer.ExecuteAsync(database, null, $"CREATE USER [{login}] FOR LOGIN [{login}]; " +
                $"GRANT SELECT, INSERT ON dbo.orders TO [{login}]; GRANT SELECT, INSERT ON dbo.order_items TO [{login}]; " +
                $"GRANT SELECT, INSERT, UPDATE ON dbo.envio_heartbeat TO [{login}]");
            foreach (var rowType in Envio.Tests.Persistence.TransactSqlTests.SqlOf(Orders.Type).RowTypes.Select(t => t.Name))
            {
                // The table types the careful path sends: SQL Server's grant first, Babelfish's (a type is a table there) else.
                try
                {
                    await TestSqlServer.ExecuteAsync(database, null, $"GRANT EXECUTE ON TYPE::dbo.{rowType} TO [{login}]");
                }
                catch (SqlException e) when (e.Message.Contains("not currently supported", StringComparison.Ordinal))
                {
                    await TestSqlServer.ExecuteAsync(database, null, $"GRANT SELECT, INSERT ON dbo.{rowType} TO [{login}]");
                }
            }
            await TestSqlServer.ExecuteAsync(database, null, $"REVOKE INSERT ON dbo.orders FROM [{login}]");
            var asLogin = new SqlConnectionStringBuilder(database) { UserID = login, Password = $"{login}_P1" }.ConnectionString;
            await using var stored = StoredOrders.Connect(database);
            await using var pipeline = await StartAsync(TestStore.SqlServer(asLogin, stack.Keys, new ConsumerIdentity("outage-tests")));
            var orders = Enumerable.Range(0, 20).Select(i => SampleOrders.Create(98_000 + i)).ToList();

            await pipeline.PublishAsync(orders.Select(o => InProcessPipeline.Message(o)), ct);

            var held = await WaitForDegradedAsync(pipeline, ct);
            await Task.Delay(TimeSpan.FromSeconds(2), ct); // five times the retry ladder
            Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(pipeline.Topology.ErrorQueue, ct));
            Assert.Contains("Writing orders fails while the database takes writes", held.Description, StringComparison.Ordinal);

            await TestSqlServer.ExecuteAsync(database, null, $"GRANT INSERT ON dbo.orders TO [{login}]");

            await AssertAllStoredOnceAsync(pipeline, stored, orders, ct);
        }
        finally
        {
            await TestSqlServer.DropDatabaseAsync(database);
            await TestSqlServer.ExecuteAsync(database, "master", $"IF SUSER_ID(N'{login}') IS NOT NULL DROP LOGIN [{login}]");
        }
    }

    private const int ConsumerBatchSize = 5;

    /// <summary>A consumer of orders only, 5 per batch, no quick retries, a retry ladder of two 200 ms steps, probes every 200–500 ms.</summary>
    private async Task<InProcessPipeline> StartAsync(TestStore store)
    {
        var pipeline = new InProcessPipeline(stack, Topologies.Private(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(200)));
        await pipeline.StartPublisherAsync();
        await pipeline.StartConsumerAsync(store: store, options: new ConsumerOptions
        {
            Channels = 1,
            BatchSize = ConsumerBatchSize,
            QuickRetries = 0,
            OutageProbeDelay = TimeSpan.FromMilliseconds(200),
            OutageProbeMaxDelay = TimeSpan.FromMilliseconds(500),
        });
        return pipeline;
    }

    /// <summary>The consumer's outage health check once it says Degraded (what <c>/health</c> shows).</summary>
    private static async Task<HealthCheckResult> WaitForDegradedAsync(InProcessPipeline pipeline, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        HealthCheckResult result;
        while ((result = await pipeline.Outage.CheckHealthAsync(new HealthCheckContext(), ct)).Status != HealthStatus.Degraded && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, ct);
        }
        return result;
    }

    /// <summary>Every order stored once, nothing left in the work, retry or error queues, health Healthy again.</summary>
    private async Task AssertAllStoredOnceAsync(InProcessPipeline pipeline, DbDataSource database, List<Order> orders, CancellationToken ct)
    {
        Assert.Equal(orders.Count, await StoredOrders.WaitForAsync(database, [.. orders.Select(o => o.OrderId)], TimeSpan.FromSeconds(30)));
        Assert.Equal(orders.Count, await StoredOrders.CountAllAsync(database));
        Assert.Equal((0u, 1u), await WaitForQueueAsync(pipeline.Names.Queue, q => q is (0, 1), ct));
        foreach (var queue in pipeline.Topology.EffectiveRetryDelays.Select(pipeline.Topology.RetryQueue).Append(pipeline.Topology.ErrorQueue))
        {
            Assert.Equal(0u, await stack.ReadyInPrivateQueueAsync(queue, ct));
        }
        Assert.Equal(HealthStatus.Healthy, (await pipeline.Outage.CheckHealthAsync(new HealthCheckContext(), ct)).Status);
    }

    private TestStore Store => TestStore.Postgres(_source, DatabaseConnectionString, stack.Keys, new ConsumerIdentity("outage-tests"));

    private string DatabaseConnectionString =>
        new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = _database }.ConnectionString;

    /// <summary>The database refuses new sessions and ends the ones open (the pool's), or takes them again.</summary>
    private Task RefuseConnectionsAsync(bool refuse) => refuse
        ? AdminAsync($"ALTER DATABASE {_database} ALLOW_CONNECTIONS false; " +
            $"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{_database}'")
        : AdminAsync($"ALTER DATABASE {_database} ALLOW_CONNECTIONS true");

    private async Task AdminAsync(string sql)
    {
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var command = server.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>As the administrator, in the test's database.</summary>
    private async Task DatabaseAsync(string sql)
    {
        await using var command = _reads.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<(uint Ready, uint Consumers)> WaitForQueueAsync(string queue, Func<(uint, uint), bool> until, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        (uint, uint) last;
        while (true)
        {
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            var declared = await channel.QueueDeclarePassiveAsync(queue, ct);
            last = (declared.MessageCount, declared.ConsumerCount);
            if (until(last) || DateTime.UtcNow > deadline)
            {
                return last;
            }
            await Task.Delay(200, ct);
        }
    }
}
