using System.Data.Common;
using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.Security;
using Envio.Tests.Security;
using Envio.Tests.Support;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Envio.Tests.Persistence;

/// <summary>
/// What every store must do, run against a real server for each engine: each test class gets a database of its own,
/// migrated by the store itself.
/// </summary>
/// <summary>PostgreSQL: the shared stack's server.</summary>
[Collection(AppHostTests.Name)]
public sealed class PostgresOrderStoreTests(EnvioStack stack) : OrderStoreContract(new PostgresEngine(stack));

/// <summary>SQL Server: the server the tests are given (<see cref="TestSqlServer"/>).</summary>
public sealed class SqlServerOrderStoreTests() : OrderStoreContract(new SqlServerEngine());

public abstract class OrderStoreContract(IStoreEngine engine) : IAsyncLifetime
{
    protected static readonly ConsumerIdentity Identity = new("store-tests/1");

    protected static readonly KeyRing Keys = EncryptionKeysOf.Fresh("store-1");

    private string? Unavailable => engine.Unavailable;

    private string MigrationsFolder => engine.MigrationsFolder;

    private Task<string?> CreateDatabaseAsync() => engine.CreateDatabaseAsync();

    private TestStore CreateStore(string connectionString, KeyRing keys, ConsumerIdentity? identity = null) =>
        engine.CreateStore(connectionString, keys, identity ?? Identity, Loggers);

    private DbConnection Connect(string connectionString) => engine.Connect(connectionString);

    private Task DropDatabaseAsync(string connectionString) => engine.DropDatabaseAsync(connectionString);

    private Task<IAsyncDisposable> HoldMigrationLockAsync(string connectionString) => engine.HoldMigrationLockAsync(connectionString);

    private string? _connectionString;

    protected TestStore Store { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _connectionString = await CreateDatabaseAsync();
        if (_connectionString is not null)
        {
            Store = CreateStore(_connectionString, Keys);
            await Store.MigrateAsync(TestContext.Current.CancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await engine.DisposeAsync();
        if (_connectionString is not null)
        {
            await DropDatabaseAsync(_connectionString);
        }
        GC.SuppressFinalize(this);
    }

    private string ConnectionString => _connectionString
        ?? throw new InvalidOperationException("No database for this engine.");

    [Fact]
    public async Task Inserts_orders_with_their_items()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var batch = Received(SampleOrders.Create(1), SampleOrders.Create(2, items: 1));

        Assert.Equal(2, await Store.InsertAsync(batch, TestContext.Current.CancellationToken));

        Assert.Equal(2, await CountAsync("orders"));
        Assert.Equal(4, await CountAsync("order_items"));
        Assert.Equal(0, await ItemsWithoutTheirOrderAsync());
    }

    [Fact]
    public async Task An_order_already_stored_is_ignored()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var order = SampleOrders.Create(3);
        await Store.InsertAsync(Received(order), TestContext.Current.CancellationToken);

        // The same id again, with other content and from another consumer: the first write stands, whole.
        var changed = order with { Customer = order.Customer with { Name = "Someone Else" }, Total = order.Total + 1, Items = [.. order.Items.Take(1)] };
        var inserted = await CreateStore(ConnectionString, Keys, new ConsumerIdentity("store-tests/2"))
            .InsertAsync(Received(changed, SampleOrders.Create(4)), TestContext.Current.CancellationToken);

        Assert.Equal(1, inserted);
        Assert.Equal(2, await CountAsync("orders"));
        Assert.Equal(6, await CountAsync("order_items"));
        Assert.Equal(0, await ItemsWithoutTheirOrderAsync());
        await using var database = StoredOrders.Connect(ConnectionString);
        var (stored, receivedBy) = (await StoredOrders.ReadAsync(database, Keys, [order.OrderId]))[order.OrderId];
        Assert.Equal(SampleOrders.Describe(order), SampleOrders.Describe(stored));
        Assert.Equal(Identity.Name, receivedBy);
    }

    [Fact]
    public async Task A_batch_holding_the_same_order_twice_stores_it_once()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var order = SampleOrders.Create(5);

        var inserted = await Store.InsertAsync(Received(order, SampleOrders.Create(6), order), TestContext.Current.CancellationToken);

        Assert.Equal(2, inserted);
        Assert.Equal(2, await CountAsync("orders"));
        Assert.Equal(6, await CountAsync("order_items"));
        Assert.Equal(0, await ItemsWithoutTheirOrderAsync());
    }

    /// <summary>
    /// The insert-if-absent itself given the same id twice (and one already stored): each id is inserted once, the
    /// stored one not again. The store's rows never reach the SQL with a duplicate (<see cref="TableMap{T}.RowsOf"/>
    /// drops it first), so a batch passed to <see cref="TestStore.InsertAsync"/> never tests the SQL's own each-id-once
    /// (SQL Server's <c>ROW_NUMBER</c>; PostgreSQL's <c>DISTINCT ON</c> with <c>ON CONFLICT DO NOTHING</c>): this runs
    /// the engine's statement on staged rows that hold the duplicate, as the careful path would if that first step
    /// ever let one through. The children are staged once per object, as a child table has no each-id-once of its own.
    /// Without <c>ROW_NUMBER</c>, SQL Server refuses the statement (duplicate key). PostgreSQL's <c>ON CONFLICT DO
    /// NOTHING</c> alone already skips a row that conflicts with one the same statement inserted, so there
    /// <c>DISTINCT ON</c> only makes the choice of copy explicit, and removing it changes nothing this can see.
    /// </summary>
    [Fact]
    public async Task The_insert_if_absent_statement_given_the_same_order_twice_and_one_stored_inserts_each_new_order_once()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var ct = TestContext.Current.CancellationToken;
        var stored = SampleOrders.Create(30);
        Assert.Equal(1, await Store.InsertAsync(Received(stored), ct));
        var (twice, once) = (SampleOrders.Create(31, items: 2), SampleOrders.Create(32, items: 1));
        var map = TestStore.Maps.For(Envio.Tests.Support.Orders.Type);
        var distinct = map.RowsOf(Received(twice, stored, once), Keys, Identity.Name);
        // The same order as a redelivery and a client's retry would bring it: a second copy, other correlation.
        var staged = new List<StoredRow<Envio.Contracts.Orders.Order>>(distinct);
        staged.Insert(1, map.RowsOf([TestStore.Received(twice, "a-client-retry")], Keys, Identity.Name)[0]);

        await using var connection = Connect(ConnectionString);
        await connection.OpenAsync(ct);
        var inserted = connection switch
        {
            Npgsql.NpgsqlConnection postgres => await InsertNewAsync(postgres, map, staged, distinct, ct),
            Microsoft.Data.SqlClient.SqlConnection sqlServer => await InsertNewAsync(sqlServer, map, staged, distinct, ct),
            _ => throw new NotSupportedException(connection.GetType().Name),
        };

        Assert.Equal(2, inserted);
        Assert.Equal(3, await CountAsync("orders"));
        Assert.Equal(stored.Items.Count + twice.Items.Count + once.Items.Count, await CountAsync("order_items"));
        Assert.Equal(0, await ItemsWithoutTheirOrderAsync());
        await using var database = StoredOrders.Connect(ConnectionString);
        var read = await StoredOrders.ReadAsync(database, Keys, [stored.OrderId, twice.OrderId, once.OrderId]);
        Assert.Equal(new[] { stored, twice, once }.Select(SampleOrders.Describe), new[] { stored, twice, once }.Select(o => SampleOrders.Describe(read[o.OrderId].Order)));
    }

    private static async Task<int> InsertNewAsync(Npgsql.NpgsqlConnection connection, TableMap<Envio.Contracts.Orders.Order> map,
        List<StoredRow<Envio.Contracts.Orders.Order>> staged, List<StoredRow<Envio.Contracts.Orders.Order>> distinct, CancellationToken ct)
    {
        var sql = Envio.ConsumerService.Persistence.Postgres.PostgresSql.Of(map);
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using (var create = new Npgsql.NpgsqlCommand(sql.CreateStaging, connection, transaction))
        {
            await create.ExecuteNonQueryAsync(ct);
        }
        await Envio.ConsumerService.Persistence.Postgres.PostgresTableWriter<Envio.Contracts.Orders.Order>.CopyAsync(connection, sql.CopyStaging,
            [.. map.ArrivedColumns.Select(c => c.Accept(Envio.ConsumerService.Persistence.Postgres.CopyColumns<StoredRow<Envio.Contracts.Orders.Order>>.Instance))], staged, ct);
        for (var i = 0; i < map.Children.Count; i++)
        {
            await map.Children[i].Accept(new PostgresChildStaging(connection, sql.ChildCopyStaging[i], distinct, Keys, ct));
        }
        await using var insert = new Npgsql.NpgsqlCommand(sql.InsertNew, connection, transaction);
        insert.Parameters.Add(new Npgsql.NpgsqlParameter<string> { TypedValue = Identity.Name });
        var inserted = Convert.ToInt32(await insert.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
        await transaction.CommitAsync(ct);
        return inserted;
    }

    private static async Task<int> InsertNewAsync(Microsoft.Data.SqlClient.SqlConnection connection, TableMap<Envio.Contracts.Orders.Order> map,
        List<StoredRow<Envio.Contracts.Orders.Order>> staged, List<StoredRow<Envio.Contracts.Orders.Order>> distinct, CancellationToken ct)
    {
        var sql = Envio.ConsumerService.Persistence.SqlServer.SqlServerSql.Of(map);
        await using var transaction = (Microsoft.Data.SqlClient.SqlTransaction)await connection.BeginTransactionAsync(ct);
        await using var insert = new Microsoft.Data.SqlClient.SqlCommand(sql.InsertNew, connection, transaction);
        insert.Parameters.Add(new Microsoft.Data.SqlClient.SqlParameter("@" + map.Table, System.Data.SqlDbType.Structured)
        {
            TypeName = "dbo." + map.Type.SqlServerRowType,
            Value = new Envio.ConsumerService.Persistence.SqlServer.RecordColumns<StoredRow<Envio.Contracts.Orders.Order>>([.. map.ArrivedColumns]).Records(staged),
        });
        foreach (var child in map.Children)
        {
            insert.Parameters.Add(child.Accept(new SqlServerChildParameter(distinct, Keys)));
        }
        insert.Parameters.Add(new Microsoft.Data.SqlClient.SqlParameter("@" + StandardColumns.ReceivedBy, System.Data.SqlDbType.NVarChar, 128) { Value = Identity.Name });
        int inserted;
        await using (var reader = await insert.ExecuteReaderAsync(ct))
        {
            await reader.ReadAsync(ct);
            inserted = reader.GetInt32(0);
        }
        await transaction.CommitAsync(ct);
        return inserted;
    }

    private sealed class PostgresChildStaging(Npgsql.NpgsqlConnection connection, string copy, List<StoredRow<Envio.Contracts.Orders.Order>> parents, KeyRing keys, CancellationToken ct)
        : IChildTableVisitor<Envio.Contracts.Orders.Order, Task>
    {
        public Task Visit<TElement>(ChildTable<Envio.Contracts.Orders.Order, TElement> table) where TElement : class =>
            Envio.ConsumerService.Persistence.Postgres.PostgresTableWriter<Envio.Contracts.Orders.Order>.CopyAsync(connection, copy,
                [.. table.Columns.Select(c => c.Accept(Envio.ConsumerService.Persistence.Postgres.CopyColumns<ChildRow<TElement>>.Instance))], table.RowsOf(parents, keys), ct);
    }

    private sealed class SqlServerChildParameter(List<StoredRow<Envio.Contracts.Orders.Order>> parents, KeyRing keys)
        : IChildTableVisitor<Envio.Contracts.Orders.Order, Microsoft.Data.SqlClient.SqlParameter>
    {
        public Microsoft.Data.SqlClient.SqlParameter Visit<TElement>(ChildTable<Envio.Contracts.Orders.Order, TElement> table) where TElement : class =>
            new("@" + table.Collection, System.Data.SqlDbType.Structured)
            {
                TypeName = $"dbo.{table.ElementName}_row",
                Value = new Envio.ConsumerService.Persistence.SqlServer.RecordColumns<ChildRow<TElement>>([.. table.Columns]).Records(table.RowsOf(parents, keys)),
            };
    }

    [Fact]
    public async Task An_order_id_stored_for_one_client_and_sent_again_by_another_is_not_stored_and_is_reported_with_both_clients()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(16);
        Assert.Equal(1, await Store.InsertAsync([TestStore.Received(order, "store-test", "client-a")], ct));
        using var conflicts = new MetricCollector<long>(null, ConsumerTelemetry.Name, "envio.consumer.client_conflicts");

        // Another client under the taken id, next to the first client's own retry (not a conflict) and a new order.
        var taken = order with { Customer = order.Customer with { Name = "Mallory" }, Total = order.Total + 1 };
        var fresh = SampleOrders.Create(17);
        var inserted = await CreateStore(ConnectionString, Keys, new ConsumerIdentity("store-tests/2")).InsertAsync(
            [TestStore.Received(taken, "store-test", "client-b"), TestStore.Received(order, "store-test", "client-a"), TestStore.Received(fresh, "store-test", "client-b")],
            ct);

        Assert.Equal(1, inserted);
        await using var database = StoredOrders.Connect(ConnectionString);
        Assert.Equal(SampleOrders.Describe(order), SampleOrders.Describe((await StoredOrders.ReadAsync(database, Keys, [order.OrderId]))[order.OrderId].Order));
        Assert.Equal("client-a", await StoredClientAsync(order.OrderId));
        Assert.Equal("client-b", await StoredClientAsync(fresh.OrderId));
        var warning = Assert.Single(Logs.GetSnapshot(), log => log.Level == LogLevel.Warning);
        Assert.Contains(order.OrderId.ToString(), warning.Message, StringComparison.Ordinal);
        Assert.Contains("client client-b", warning.Message, StringComparison.Ordinal);
        Assert.Contains("client client-a", warning.Message, StringComparison.Ordinal);
        Assert.True(conflicts.GetMeasurementSnapshot().Sum(m => m.Value) >= 1, "the conflict was not counted");
    }

    [Fact]
    public async Task One_batch_holding_a_new_order_id_from_two_clients_stores_the_first_and_reports_the_second()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var order = SampleOrders.Create(18);
        var taken = order with { Customer = order.Customer with { Name = "Mallory" } };

        var inserted = await Store.InsertAsync(
            [TestStore.Received(order, "store-test", "client-a"), TestStore.Received(taken, "store-test", "client-b")], TestContext.Current.CancellationToken);

        Assert.Equal(1, inserted);
        Assert.Equal("client-a", await StoredClientAsync(order.OrderId));
        var warning = Assert.Single(Logs.GetSnapshot(), log => log.Level == LogLevel.Warning);
        Assert.Contains("client client-b", warning.Message, StringComparison.Ordinal);
        Assert.Contains("client client-a", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failure_in_the_middle_of_a_batch_leaves_nothing_behind()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var tooLong = SampleOrders.Create(8) with { Items = [new() { Sku = new string('x', 65), Quantity = 1, UnitPrice = 1m }], Total = 1m };

        var refused = await Assert.ThrowsAnyAsync<DbException>(() =>
            Store.InsertAsync(Received(SampleOrders.Create(7), tooLong, SampleOrders.Create(9)), TestContext.Current.CancellationToken));

        Assert.Equal(0, await CountAsync("orders"));
        Assert.Equal(0, await CountAsync("order_items"));
        // What the data causes fails the same way every time: the batch is split and the order dead-lettered.
        Assert.False(FailureClassifier.IsTransient(refused), $"classified as transient: {refused.Message}");
    }

    [Fact]
    public async Task Two_consumers_inserting_the_same_new_orders_at_once_store_each_once_with_its_items()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var ct = TestContext.Current.CancellationToken;
        var orders = Enumerable.Range(0, 1_000).Select(i => SampleOrders.Create(20_000 + i, items: 1 + i % 3)).ToList();
        var replicas = new[] { CreateStore(ConnectionString, Keys), CreateStore(ConnectionString, Keys) };
        using var start = new Barrier(replicas.Length);

        // Both replicas get every order (redeliveries and client retries meeting), in batches of different sizes, so
        // their batches overlap all the way through. A store that lets one of them fail would dead-letter it.
        var inserted = await Task.WhenAll(replicas.Select((store, replica) => Task.Run(async () =>
        {
            start.SignalAndWait(ct);
            var count = 0;
            foreach (var batch in orders.Chunk(replica == 0 ? 100 : 64))
            {
                count += await store.InsertAsync(Received(batch), ct);
            }
            return count;
        }, ct)));

        Assert.Equal(orders.Count, inserted.Sum());
        Assert.Equal(orders.Count, await CountAsync("orders"));
        Assert.Equal(orders.Sum(o => o.Items.Count), await CountAsync("order_items"));
        Assert.Equal(0, await ItemsWithoutTheirOrderAsync());
    }

    [Fact]
    public async Task Migrations_run_once_when_replicas_start_together_on_an_empty_database()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var empty = (await CreateDatabaseAsync())!; // not migrated: the replicas race for real
        try
        {
            var replicas = Enumerable.Range(0, 4).Select(_ => CreateStore(empty, Keys)).ToList();

            await Task.WhenAll(replicas.Select(r => r.MigrateAsync(TestContext.Current.CancellationToken)));

            Assert.Equal(MigrationScripts, await ScalarAsync(empty, "SELECT COUNT(*) FROM schemaversions"));
            Assert.Equal(1, await CreateStore(empty, Keys).InsertAsync(Received(SampleOrders.Create(13)), TestContext.Current.CancellationToken));
        }
        finally
        {
            await DropDatabaseAsync(empty);
        }
    }

    [Fact]
    public async Task A_replica_waits_for_a_migration_that_holds_the_lock_longer_than_a_command_timeout()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var ct = TestContext.Current.CancellationToken;
        var migrating = await HoldMigrationLockAsync(ConnectionString);

        // Every command of this replica times out after 2 s unless it says otherwise (both engines read the keyword):
        // waiting 5 s shows the lock's wait outlives a command timeout, without sitting out the default 30 s.
        var replica = CreateStore($"{ConnectionString};Command Timeout=2", Keys).MigrateAsync(ct);
        await Task.Delay(TimeSpan.FromSeconds(5), ct);
        Assert.False(replica.IsCompleted, $"the replica did not wait for the lock: {replica.Exception?.InnerException?.Message}");
        await migrating.DisposeAsync();

        await replica.WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.Equal(MigrationScripts, await CountAsync("schemaversions"));
    }

    [Fact]
    public async Task The_customers_email_and_document_are_stored_encrypted_and_open_with_the_key_ring()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var order = SampleOrders.Create(10);

        await Store.InsertAsync(Received(order), TestContext.Current.CancellationToken);

        var (email, document) = (await SensitiveColumnsAsync())[order.OrderId];
        Assert.Equal(Keys.CurrentKeyId, SealedValue.KeyIdOf(email));
        Assert.False(email.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(order.Customer.Email)) >= 0, "the email is stored in clear");
        Assert.Equal(order.Customer.Email, SensitiveColumns.Open(Keys, order.OrderId, SensitiveColumns.CustomerEmail, email));
        Assert.Equal(order.Customer.Document, SensitiveColumns.Open(Keys, order.OrderId, SensitiveColumns.CustomerDocument, document));
        // A value is bound to its row and column: moved elsewhere, it does not open.
        Assert.Throws<UndecryptableException>(() => SensitiveColumns.Open(Keys, order.OrderId, SensitiveColumns.CustomerDocument, email));
        Assert.Throws<UndecryptableException>(() => SensitiveColumns.Open(Keys, Guid.CreateVersion7(), SensitiveColumns.CustomerEmail, email));
    }

    [Fact]
    public async Task After_a_key_rotation_new_rows_use_the_new_key_and_rows_of_the_old_key_still_open()
    {
        Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");
        var oldKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(KeyRing.KeySize);
        var before = new KeyRing("2025", new Dictionary<string, byte[]> { ["2025"] = oldKey });
        var after = new KeyRing("2026", new Dictionary<string, byte[]>
        {
            ["2025"] = oldKey,
            ["2026"] = System.Security.Cryptography.RandomNumberGenerator.GetBytes(KeyRing.KeySize),
        });
        var (older, newer) = (SampleOrders.Create(11), SampleOrders.Create(12));

        await CreateStore(ConnectionString, before).InsertAsync(Received(older), TestContext.Current.CancellationToken);
        await CreateStore(ConnectionString, after).InsertAsync(Received(newer), TestContext.Current.CancellationToken);

        var rows = await SensitiveColumnsAsync();
        Assert.Equal("2025", SealedValue.KeyIdOf(rows[older.OrderId].Email));
        Assert.Equal("2026", SealedValue.KeyIdOf(rows[newer.OrderId].Email));
        Assert.Equal(older.Customer.Email, SensitiveColumns.Open(after, older.OrderId, SensitiveColumns.CustomerEmail, rows[older.OrderId].Email));
        Assert.Equal(newer.Customer.Document, SensitiveColumns.Open(after, newer.OrderId, SensitiveColumns.CustomerDocument, rows[newer.OrderId].Document));
        var unknown = Assert.Throws<UndecryptableException>(() =>
            SensitiveColumns.Open(before, newer.OrderId, SensitiveColumns.CustomerEmail, rows[newer.OrderId].Email));
        Assert.Contains("'2026'", unknown.Message, StringComparison.Ordinal);
    }

    /// <summary>How many migrations this engine has.</summary>
    private int MigrationScripts => typeof(ITableWriter<>).Assembly.GetManifestResourceNames()
        .Count(n => n.Contains($".Migrations.{MigrationsFolder}.", StringComparison.Ordinal));

    private async Task<Dictionary<Guid, (byte[] Email, byte[] Document)>> SensitiveColumnsAsync()
    {
        await using var connection = Connect(ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT order_id, customer_email, customer_document FROM orders";
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new Dictionary<Guid, (byte[], byte[])>();
        while (await reader.ReadAsync())
        {
            rows[reader.GetGuid(0)] = (reader.GetFieldValue<byte[]>(1), reader.GetFieldValue<byte[]>(2));
        }
        return rows;
    }

    protected static List<Received<Envio.Contracts.Orders.Order>> Received(params Envio.Contracts.Orders.Order[] orders) =>
        orders.Select(o => TestStore.Received(o)).ToList();

    private async Task<string?> StoredClientAsync(Guid orderId)
    {
        await using var connection = Connect(ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT client_id FROM orders WHERE order_id = '{orderId}'";
        return await command.ExecuteScalarAsync() as string;
    }

    private Task<long> ItemsWithoutTheirOrderAsync() => ScalarAsync(ConnectionString, StoredOrders.CountItemsWithoutTheirOrder);

    private Task<long> CountAsync(string table) => ScalarAsync(ConnectionString, $"SELECT COUNT(*) FROM {table}");

    private async Task<long> ScalarAsync(string connectionString, string query)
    {
        await using var connection = Connect(connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = query;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>What the stores of this test logged.</summary>
    private FakeLogCollector Logs { get; } = new();

    private ILoggerFactory Loggers => LoggerFactory.Create(logging => logging.AddProvider(new FakeLoggerProvider(Logs)));
}
