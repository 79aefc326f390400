using System.Data.Common;
using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.Security;
using Envio.Tests.Security;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Npgsql;

namespace Envio.Tests.Persistence;

/// <summary>PostgreSQL: the shared stack's server.</summary>
[Collection(AppHostTests.Name)]
public sealed class PostgresDataObjectStoreTests(EnvioStack stack) : DataObjectStoreContract(new PostgresEngine(stack));

/// <summary>SQL Server: the server the tests are given (<see cref="TestSqlServer"/>).</summary>
public sealed class SqlServerDataObjectStoreTests() : DataObjectStoreContract(new SqlServerEngine());

/// <summary>
/// What the stores do for every registered type, on each engine, with the type's tables as its migrations made them and
/// its writer as the consumer builds it from the type's map: stored equals sent (every column, child rows and sealed
/// values included), each id once whatever arrives twice, another client's object under a taken id reported and not
/// stored, nothing left of a batch the database refuses, two consumers racing on the same objects, sealed values bound
/// to their table, column and id.
/// </summary>
public abstract class DataObjectStoreContract(IStoreEngine engine) : IAsyncLifetime
{
    private static readonly KeyRing Keys = EncryptionKeysOf.Fresh("store-2");
    private readonly FakeLogCollector _logs = new();
    private string? _connectionString;
    private DbDataSource? _database;

    public async ValueTask InitializeAsync()
    {
        _connectionString = await engine.CreateDatabaseAsync();
        if (_connectionString is not null)
        {
            await Store().MigrateAsync(TestContext.Current.CancellationToken);
            _database = engine.Connect(_connectionString) is NpgsqlConnection
                ? NpgsqlDataSource.Create(_connectionString)
                : SqlClientFactory.Instance.CreateDataSource(_connectionString);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
        await engine.DisposeAsync();
        if (_connectionString is not null)
        {
            await engine.DropDatabaseAsync(_connectionString);
        }
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task The_migrated_database_fits_every_registered_type()
    {
        Assert.SkipWhen(engine.Unavailable is not null, engine.Unavailable ?? "");
        Assert.Empty(await Store().SchemaProblemsAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_database_that_cannot_hold_a_type_is_refused_naming_the_table_and_the_column()
    {
        Assert.SkipWhen(engine.Unavailable is not null, engine.Unavailable ?? "");
        var ct = TestContext.Current.CancellationToken;
        var altered = (await engine.CreateDatabaseAsync())!;
        try
        {
            await engine.CreateStore(altered, Keys, new ConsumerIdentity("store-tests/1"), LoggerFactory.Create(_ => { })).MigrateAsync(ct);
            // A column narrower than its property, a column gone, and (SQL Server) the items' table type gone.
            string[] changes = engine.MigrationsFolder == "Postgres"
                ? ["ALTER TABLE order_items ALTER COLUMN sku TYPE varchar(10)", "ALTER TABLE orders DROP COLUMN client_id"]
                : ["ALTER TABLE dbo.order_items ALTER COLUMN sku nvarchar(10)", "ALTER TABLE dbo.orders DROP COLUMN client_id", "DROP TYPE dbo.order_item_row"];
            await using (var connection = engine.Connect(altered))
            {
                await connection.OpenAsync(ct);
                foreach (var change in changes)
                {
                    await using var command = connection.CreateCommand();
                    command.CommandText = change;
                    await command.ExecuteNonQueryAsync(ct);
                }
            }

            var problems = await engine.CreateStore(altered, Keys, new ConsumerIdentity("store-tests/1"), LoggerFactory.Create(_ => { }))
                .SchemaProblemsAsync(ct);

            Assert.Contains("order_items.sku: holds at most 10 characters, but its property allows 64.", problems);
            Assert.Contains(problems, p => p.StartsWith("orders.client_id: the column does not exist", StringComparison.Ordinal));
            if (engine.MigrationsFolder != "Postgres")
            {
                Assert.Contains(problems, p => p.StartsWith("the table type dbo.order_item_row", StringComparison.Ordinal)
                    && p.Contains("CREATE TYPE dbo.order_item_row AS TABLE (", StringComparison.Ordinal));
            }
        }
        finally
        {
            await engine.DropDatabaseAsync(altered);
        }
    }

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task What_is_stored_equals_what_was_sent_and_an_object_stored_already_is_ignored(string type) => RunAsync(type, s => s.StoredOnceAsync());

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task A_batch_holding_the_same_object_twice_stores_it_once(string type) => RunAsync(type, s => s.TwiceInOneBatchAsync());

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task An_id_stored_for_one_client_and_sent_again_by_another_is_not_stored_and_is_reported(string type) => RunAsync(type, s => s.TwoClientsAsync());

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task A_failure_in_the_middle_of_a_batch_leaves_nothing_behind_and_is_permanent(string type) => RunAsync(type, s => s.RefusedMidBatchAsync());

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task Two_consumers_writing_the_same_new_objects_at_once_store_each_once(string type) => RunAsync(type, s => s.TwoConsumersAsync());

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task Sealed_values_are_stored_encrypted_and_open_only_for_their_table_column_and_id(string type) => RunAsync(type, s => s.SealedAsync());

    private Task RunAsync(string type, Func<IScenarios, Task> scenario)
    {
        Assert.SkipWhen(engine.Unavailable is not null, engine.Unavailable ?? "");
        return scenario(Samples.TypeNamed(type).Accept(new ScenariosOf(this)));
    }

    private TestStore Store(string consumer = "store-tests/1") =>
        engine.CreateStore(_connectionString!, Keys, new ConsumerIdentity(consumer), LoggerFactory.Create(l => l.AddProvider(new FakeLoggerProvider(_logs))));

    private interface IScenarios
    {
        Task StoredOnceAsync();

        Task TwiceInOneBatchAsync();

        Task TwoClientsAsync();

        Task RefusedMidBatchAsync();

        Task TwoConsumersAsync();

        Task SealedAsync();
    }

    private sealed class ScenariosOf(DataObjectStoreContract contract) : IDataObjectTypeVisitor<IScenarios>
    {
        public IScenarios Visit<T>(DataObjectType<T> type) where T : class => new Scenarios<T>(contract, type);
    }

    private sealed class Scenarios<T>(DataObjectStoreContract contract, DataObjectType<T> type) : IScenarios where T : class
    {
        private static int _seed = 1_000;
        private readonly TableMap<T> _map = TestStore.Maps.For(type);
        private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

        private ITableWriter<T> Writer(string consumer = "store-tests/1") => contract.Store(consumer).WriterOf(type);

        private T Sample() => Samples.Create(type, Interlocked.Increment(ref _seed));

        private Received<T> Received(T value, string? client = null) => new(value, type.IdOf(value), "store-test", client);

        private DbDataSource Database => contract._database!;

        public async Task StoredOnceAsync()
        {
            var (first, second) = (Sample(), Sample());
            Assert.Equal(2, await Writer().InsertAsync([Received(first), Received(second)], _ct));

            // The same id again, with other content and from another consumer: the first write stands, whole.
            var changed = Samples.Create(type, Interlocked.Increment(ref _seed));
            var again = Received(type.Deserialize(Retagged(changed, type.IdOf(first)))!);
            Assert.Equal(1, await Writer("store-tests/2").InsertAsync([again, Received(Sample())], _ct));

            await AssertStoredAsync([Received(first), Received(second)]);
        }

        public async Task TwiceInOneBatchAsync()
        {
            var (value, other) = (Sample(), Sample());
            Assert.Equal(2, await Writer().InsertAsync([Received(value), Received(other), Received(value)], _ct));
            await AssertStoredAsync([Received(value), Received(other)]);
        }

        public async Task TwoClientsAsync()
        {
            var value = Sample();
            Assert.Equal(1, await Writer().InsertAsync([Received(value, "client-a")], _ct));
            var taken = type.Deserialize(Retagged(Sample(), type.IdOf(value)))!;
            var fresh = Sample();

            var inserted = await Writer("store-tests/2").InsertAsync([Received(taken, "client-b"), Received(value, "client-a"), Received(fresh, "client-b")], _ct);

            Assert.Equal(1, inserted);
            await AssertStoredAsync([Received(value, "client-a"), Received(fresh, "client-b")]);
            var warning = Assert.Single(contract._logs.GetSnapshot(), log => log.Level == LogLevel.Warning && log.Message.Contains(type.IdOf(value).ToString(), StringComparison.Ordinal));
            Assert.Contains("client client-b", warning.Message, StringComparison.Ordinal);
            Assert.Contains("client client-a", warning.Message, StringComparison.Ordinal);
        }

        public async Task RefusedMidBatchAsync()
        {
            var batch = new[] { Sample(), Samples.TooLongForItsColumn(type, Interlocked.Increment(ref _seed)), Sample() };

            var refused = await Assert.ThrowsAnyAsync<DbException>(() => Writer().InsertAsync([.. batch.Select(v => Received(v))], _ct));

            Assert.Equal(0, await StoredObjects.CountAsync(Database, _map.Table, _map.KeyColumn, [.. batch.Select(type.IdOf)]));
            foreach (var child in _map.Children)
            {
                Assert.Equal(0, await StoredObjects.CountAsync(Database, child.Table, _map.KeyColumn, [.. batch.Select(type.IdOf)]));
            }
            // What the data causes fails the same way every time: the batch is split and the object dead-lettered.
            Assert.False(FailureClassifier.IsTransient(refused), $"classified as transient: {refused.Message}");
        }

        public async Task TwoConsumersAsync()
        {
            var values = Enumerable.Range(0, 600).Select(_ => Sample()).ToList();
            var writers = new[] { Writer("store-tests/1"), Writer("store-tests/2") };
            using var start = new Barrier(writers.Length);

            // Both get every object (redeliveries and client retries meeting), in batches of different sizes, so their
            // batches overlap all the way through. A store that lets one of them fail would dead-letter it.
            var inserted = await Task.WhenAll(writers.Select((writer, replica) => Task.Run(async () =>
            {
                start.SignalAndWait(_ct);
                var count = 0;
                foreach (var batch in values.Chunk(replica == 0 ? 100 : 64))
                {
                    count += await writer.InsertAsync([.. batch.Select(v => Received(v))], _ct);
                }
                return count;
            }, _ct)));

            Assert.Equal(values.Count, inserted.Sum());
            await AssertStoredAsync([.. values.Select(v => Received(v))]);
        }

        public async Task SealedAsync()
        {
            var value = Sample();
            await Writer().InsertAsync([Received(value)], _ct);
            var id = type.IdOf(value);
            var sealedColumns = _map.Columns.Where(c => c.Shape.Type == ColumnType.Bytes).ToList();
            Assert.SkipWhen(sealedColumns.Count == 0, $"{type.Name} has no sealed property.");

            await using var command = Database.CreateCommand(
                $"SELECT {string.Join(", ", sealedColumns.Select(c => c.Name))} FROM {_map.Table} WHERE {_map.KeyColumn} = '{id:D}'");
            await using var reader = await command.ExecuteReaderAsync(_ct);
            Assert.True(await reader.ReadAsync(_ct));
            var expected = StoredObjects.Expected(_map, Keys, [Received(value)])[id];
            for (var i = 0; i < sealedColumns.Count; i++)
            {
                var stored = reader.GetFieldValue<byte[]>(i);
                var column = sealedColumns[i].Name;
                Assert.Equal(Keys.CurrentKeyId, SealedValue.KeyIdOf(stored));
                var clear = SensitiveColumns.Open(Keys, _map.Table, column, id, stored);
                Assert.Contains($" {column}={clear}", expected, StringComparison.Ordinal);
                Assert.False(stored.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(clear)) >= 0, $"{column} is stored in clear");
                // Bound to its table, column and id: anywhere else it does not open.
                Assert.Throws<UndecryptableException>(() => SensitiveColumns.Open(Keys, _map.Table, column, Guid.CreateVersion7(), stored));
                Assert.Throws<UndecryptableException>(() => SensitiveColumns.Open(Keys, _map.Table, column + "_elsewhere", id, stored));
                Assert.Throws<UndecryptableException>(() => SensitiveColumns.Open(Keys, _map.Table + "_elsewhere", column, id, stored));
            }
        }

        /// <summary>Every object stored once, exactly as sent (every column, child rows in order, sealed values opened).</summary>
        private async Task AssertStoredAsync(IReadOnlyList<Received<T>> sent)
        {
            var ids = sent.Select(r => r.Id).ToList();
            var stored = await StoredObjects.ReadAsync(Database, _map, Keys, ids);
            var expected = StoredObjects.Expected(_map, Keys, sent);
            Assert.Equal(ids.Count, stored.Count);
            foreach (var id in ids)
            {
                Assert.Equal(expected[id], stored[id]);
            }
        }

        private byte[] Retagged(T value, Guid id)
        {
            var json = System.Text.Json.JsonSerializer.SerializeToNode(value, type.Json)!.AsObject();
            json[type.Id.JsonName] = id.ToString();
            return System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(json);
        }
    }
}
