using Envio.AppHost.Hosting;
using Envio.ConsumerService.Persistence;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;
using System.Net.Http.Json;
using Npgsql;

namespace Envio.Tests.Persistence;

/// <summary>
/// Two identities per database: the owner migrates and grants; the runtime identity the consumer writes with may
/// select and insert on the types' tables and write the heartbeat, and nothing else. A stolen runtime password can
/// neither erase nor alter what is stored, nor change the schema. On PostgreSQL (the shared stack's server) and on SQL
/// Server (the test server), each with roles of its own.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class DatabaseRightsTests(EnvioStack stack)
{
    [Fact]
    public async Task On_postgres_the_runtime_role_writes_batches_and_the_heartbeat_and_may_not_update_delete_or_alter()
    {
        var ct = TestContext.Current.CancellationToken;
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var (database, owner, writer) = ($"rights_{suffix}", $"owner_{suffix}", $"writer_{suffix}");
        await ServerAsync($"CREATE ROLE {owner} LOGIN PASSWORD '{owner}'; CREATE ROLE {writer} LOGIN PASSWORD '{writer}'");
        await ServerAsync($"CREATE DATABASE {database} OWNER {owner}");
        try
        {
            var asOwner = As(database, owner);
            var asWriter = As(database, writer);
            await using var writerSource = NpgsqlDataSource.Create(asWriter);
            var store = TestStore.Postgres(writerSource, asWriter, stack.Keys, new ConsumerIdentity("rights-tests"), ownerConnectionString: asOwner);
            var orders = Enumerable.Range(0, 3).Select(i => SampleOrders.Create(99_100 + i)).ToList();

            await store.MigrateAndGrantAsync(ct);
            await store.MigrateAndGrantAsync(ct); // every start grants again: idempotent

            Assert.Empty(await store.SchemaProblemsAsync(ct)); // the catalog, as the runtime role sees it
            Assert.Equal(3, await store.InsertAsync([.. orders.Select(o => TestStore.Received(o))], ct));
            Assert.Equal(0, await store.InsertAsync([.. orders.Select(o => TestStore.Received(o))], ct)); // reads what is stored
            Assert.True(await store.TakesWritesAsync(ct));
            Assert.True(await store.TakesWritesAsync(ct)); // the heartbeat's row, updated
            Assert.Equal(false, await ScalarAsync(writerSource, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"));
            foreach (var forbidden in new[]
            {
                "DELETE FROM orders", "UPDATE orders SET total = 0", "TRUNCATE order_items", "DELETE FROM envio_heartbeat",
                "DROP TABLE orders", "ALTER TABLE orders ADD COLUMN stolen text", "CREATE TABLE stolen (id int)",
                "SELECT * FROM schemaversions",
            })
            {
                var refused = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(writerSource, forbidden));
                Assert.True(refused.SqlState is PostgresErrorCodes.InsufficientPrivilege, $"{forbidden}: {refused.SqlState} {refused.MessageText}");
            }
            Assert.Equal(3L, await ScalarAsync(writerSource, "SELECT count(*) FROM orders"));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ServerAsync($"DROP DATABASE IF EXISTS {database} WITH (FORCE)");
            await ServerAsync($"DROP ROLE IF EXISTS {owner}; DROP ROLE IF EXISTS {writer}");
        }
    }

    [Fact]
    public async Task On_sql_server_the_runtime_login_writes_batches_and_the_heartbeat_and_may_not_update_delete_or_alter()
    {
        if (TestSqlServer.Unavailable is { } reason)
        {
            Assert.Skip(reason);
        }
        var ct = TestContext.Current.CancellationToken;
        var administrator = TestSqlServer.ConnectionString!;
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var (database, owner, writer) = ($"rights_{suffix}", $"owner_{suffix}", $"writer_{suffix}");
        const string password = "Rights0Password1Letters";
        try
        {
            // What the bootstrap step does: the owner's login owning the database, the writer's login and nothing more.
            await SqlServerLogins.EnsureLoginOwnsDatabaseAsync(administrator, database, owner, password, writer, password, ct);
            var asOwner = new SqlConnectionStringBuilder(administrator) { UserID = owner, Password = password, InitialCatalog = database }.ConnectionString;
            var asWriter = new SqlConnectionStringBuilder(administrator) { UserID = writer, Password = password, InitialCatalog = database }.ConnectionString;
            var store = TestStore.SqlServer(asWriter, stack.Keys, new ConsumerIdentity("rights-tests"), ownerConnectionString: asOwner);
            var orders = Enumerable.Range(0, 3).Select(i => SampleOrders.Create(99_200 + i)).ToList();

            await store.MigrateAndGrantAsync(ct);
            await store.MigrateAndGrantAsync(ct);

            Assert.Empty(await store.SchemaProblemsAsync(ct));
            Assert.Equal(3, await store.InsertAsync([.. orders.Select(o => TestStore.Received(o))], ct));
            Assert.Equal(0, await store.InsertAsync([.. orders.Select(o => TestStore.Received(o))], ct));
            Assert.True(await store.TakesWritesAsync(ct));
            Assert.True(await store.TakesWritesAsync(ct));
            foreach (var forbidden in new[]
            {
                "DELETE FROM dbo.orders", "UPDATE dbo.orders SET total = 0", "DELETE FROM dbo.envio_heartbeat",
                "DROP TABLE dbo.order_items", "ALTER TABLE dbo.orders ADD stolen nvarchar(10) NULL", "CREATE TABLE dbo.stolen (id int)",
            })
            {
                await Assert.ThrowsAsync<SqlException>(() => TestSqlServer.ExecuteAsync(asWriter, null, forbidden));
            }
            Assert.Equal(3, await SqlServerScalarAsync(asOwner, "SELECT COUNT(*) FROM dbo.orders"));
        }
        finally
        {
            SqlConnection.ClearAllPools();
            await TestSqlServer.ExecuteAsync(administrator, "master",
                $"IF DB_ID(N'{database}') IS NOT NULL DROP DATABASE [{database}]; IF SUSER_ID(N'{owner}') IS NOT NULL DROP LOGIN [{owner}]; " +
                $"IF SUSER_ID(N'{writer}') IS NOT NULL DROP LOGIN [{writer}];");
        }
    }

    [Fact]
    public async Task On_sql_server_a_runtime_login_the_server_does_not_have_stops_the_start_with_what_to_do()
    {
        if (TestSqlServer.Unavailable is { } reason)
        {
            Assert.Skip(reason);
        }
        var ct = TestContext.Current.CancellationToken;
        var administrator = TestSqlServer.ConnectionString!;
        var suffix = Guid.NewGuid().ToString("N")[..12];
        var (database, owner) = ($"rights_{suffix}", $"owner_{suffix}");
        const string password = "Rights0Password1Letters";
        try
        {
            await SqlServerLogins.EnsureLoginOwnsDatabaseAsync(administrator, database, owner, password, $"writer_{suffix}", password, ct);
            var asOwner = new SqlConnectionStringBuilder(administrator) { UserID = owner, Password = password, InitialCatalog = database }.ConnectionString;
            var asMissing = new SqlConnectionStringBuilder(asOwner) { UserID = $"missing_{suffix}" }.ConnectionString;
            var store = TestStore.SqlServer(asMissing, stack.Keys, new ConsumerIdentity("rights-tests"), ownerConnectionString: asOwner);

            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => store.MigrateAndGrantAsync(ct));

            Assert.Contains($"The login 'missing_{suffix}' of ConnectionStrings:enviodb does not exist", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            SqlConnection.ClearAllPools();
            await TestSqlServer.ExecuteAsync(administrator, "master",
                $"IF DB_ID(N'{database}') IS NOT NULL DROP DATABASE [{database}]; IF SUSER_ID(N'{owner}') IS NOT NULL DROP LOGIN [{owner}]; " +
                $"IF SUSER_ID(N'writer_{suffix}') IS NOT NULL DROP LOGIN [writer_{suffix}];");
        }
    }

    [Fact]
    public async Task The_stacks_consumer_writes_as_a_role_that_is_no_superuser_and_may_not_delete_what_is_stored()
    {
        var ct = TestContext.Current.CancellationToken;
        var consumer = (await ResourceSettings.OfAsync(stack.App, "consumer", ct)).ToDictionary(s => s.Key, s => s.Value);
        var api = await ResourceSettings.OfAsync(stack.App, "api", ct);
        var runtime = consumer["ConnectionStrings:enviodb"]!;
        var owner = consumer["ConnectionStrings:enviodb-migrations"]!;
        var order = SampleOrders.Create(99_300);
        using (var accepted = await stack.Api.PostAsJsonAsync("/api/orders", order, Envio.Contracts.DataObjects.WireFormat.Options, ct))
        {
            Assert.Equal(System.Net.HttpStatusCode.Accepted, accepted.StatusCode);
        }
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));

        await using var asRuntime = NpgsqlDataSource.Create(runtime);
        await using var asOwner = NpgsqlDataSource.Create(owner);
        Assert.NotEqual(new NpgsqlConnectionStringBuilder(runtime).Username, new NpgsqlConnectionStringBuilder(owner).Username);
        Assert.Equal(false, await ScalarAsync(asRuntime, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user"));
        Assert.Equal(false, await ScalarAsync(asOwner, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user"));
        var refused = await Assert.ThrowsAsync<PostgresException>(() => ScalarAsync(asRuntime, $"DELETE FROM orders WHERE order_id = '{order.OrderId}'"));
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
        Assert.Equal(1L, await ScalarAsync(asRuntime, $"SELECT count(*) FROM orders WHERE order_id = '{order.OrderId}'"));
        Assert.DoesNotContain(api, s => s.Key.StartsWith("ConnectionStrings:enviodb", StringComparison.Ordinal)); // the API holds no database identity
    }

    private string As(string database, string role) =>
        new NpgsqlConnectionStringBuilder(stack.ServerConnectionString) { Database = database, Username = role, Password = role }.ConnectionString;

    private async Task ServerAsync(string sql)
    {
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var command = server.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(NpgsqlDataSource source, string sql)
    {
        await using var command = source.CreateCommand(sql);
        return await command.ExecuteScalarAsync();
    }

    private static async Task<object?> SqlServerScalarAsync(string connectionString, string sql)
    {
        await using var connection = new SqlConnection(new SqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new SqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
