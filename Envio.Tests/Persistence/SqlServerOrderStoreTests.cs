using System.Data.Common;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Security;
using Microsoft.Data.SqlClient;

namespace Envio.Tests.Persistence;

/// <summary>
/// The SQL Server store on a real SQL Server, when <c>ENVIO_TEST_SQLSERVER</c> holds a connection string to one
/// (a login allowed to create databases); reported as skipped otherwise, since SQL Server cannot run here.
/// </summary>
public sealed class SqlServerOrderStoreTests : OrderStoreContract
{
    public const string Variable = "ENVIO_TEST_SQLSERVER";

    private static readonly string? Server = Environment.GetEnvironmentVariable(Variable);

    protected override async Task<string?> CreateDatabaseAsync()
    {
        if (string.IsNullOrWhiteSpace(Server))
        {
            return null;
        }
        var name = $"envio_store_tests_{Guid.NewGuid():N}";
        await using var connection = new SqlConnection(new SqlConnectionStringBuilder(Server) { InitialCatalog = "master" }.ConnectionString);
        await connection.OpenAsync();
        await using var create = new SqlCommand($"CREATE DATABASE [{name}]", connection);
        await create.ExecuteNonQueryAsync();
        return new SqlConnectionStringBuilder(Server) { InitialCatalog = name }.ConnectionString;
    }

    protected override IOrderStore CreateStore(string connectionString, KeyRing keys) =>
        new SqlServerOrderStore(new StoreSettings(StoreEngine.SqlServer, connectionString), Identity, keys, Log<SqlServerOrderStore>());

    protected override string? Unavailable => string.IsNullOrWhiteSpace(Server)
        ? $"{Variable} is not set: no SQL Server to test against (it cannot run on this machine)."
        : null;

    protected override DbConnection Connect(string connectionString) => new SqlConnection(connectionString);

    protected override string MigrationsFolder => "SqlServer";

    protected override async Task DropDatabaseAsync(string connectionString)
    {
        SqlConnection.ClearAllPools();
        var name = new SqlConnectionStringBuilder(connectionString).InitialCatalog;
        await using var connection = new SqlConnection(new SqlConnectionStringBuilder(connectionString) { InitialCatalog = "master" }.ConnectionString);
        await connection.OpenAsync();
        // Pools cleared, nothing holds the database: DROP needs no SET SINGLE_USER (which Babelfish does not have).
        await using var drop = new SqlCommand($"DROP DATABASE [{name}];", connection);
        await drop.ExecuteNonQueryAsync();
    }
}
