using Microsoft.Data.SqlClient;

namespace Envio.Tests.Support;

/// <summary>
/// The SQL Server the tests store into: <c>ENVIO_TEST_SQLSERVER</c> holds a connection string to one, with a login
/// allowed to create databases. test.sh sets it from ../shared/tds (Babelfish: SQL Server's protocol and T-SQL) when
/// that exists; anywhere else the SQL Server tests are reported as skipped, with this reason.
/// </summary>
public static class TestSqlServer
{
    public const string Variable = "ENVIO_TEST_SQLSERVER";

    /// <summary>The server's own certificate file, where the script that started it says (Babelfish from ../shared/tds).</summary>
    public const string CertificateVariable = "ENVIO_TEST_SQLSERVER_CERTIFICATE";

    public static string? ConnectionString { get; } =
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value ? value : null;

    /// <summary>Why the SQL Server tests cannot run here, or null when they can.</summary>
    public static string? Unavailable => ConnectionString is null
        ? $"{Variable} is not set: no SQL Server to test against (test.sh sets it from ../shared/tds where that exists)."
        : null;

    /// <summary>Creates an empty database of its own on <paramref name="server"/>; returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string server, string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}";
        await using var connection = new SqlConnection(new SqlConnectionStringBuilder(server) { InitialCatalog = "master" }.ConnectionString);
        await connection.OpenAsync();
        await using var create = new SqlCommand($"CREATE DATABASE [{name}]", connection);
        await create.ExecuteNonQueryAsync();
        return new SqlConnectionStringBuilder(server) { InitialCatalog = name }.ConnectionString;
    }

    /// <summary>Runs <paramref name="sql"/> on a connection of its own (no pooling), in <paramref name="catalog"/> when given.</summary>
    public static async Task ExecuteAsync(string connectionString, string? catalog, string sql)
    {
        var builder = new SqlConnectionStringBuilder(connectionString) { Pooling = false };
        if (catalog is not null)
        {
            builder.InitialCatalog = catalog;
        }
        await using var connection = new SqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        await using var command = new SqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public static async Task DropDatabaseAsync(string connectionString)
    {
        // With the pools cleared nothing holds the database, so DROP needs no SET SINGLE_USER (Babelfish has none).
        SqlConnection.ClearAllPools();
        var name = new SqlConnectionStringBuilder(connectionString).InitialCatalog;
        await using var connection = new SqlConnection(new SqlConnectionStringBuilder(connectionString) { InitialCatalog = "master" }.ConnectionString);
        await connection.OpenAsync();
        await using var drop = new SqlCommand($"DROP DATABASE [{name}]", connection);
        await drop.ExecuteNonQueryAsync();
    }
}
