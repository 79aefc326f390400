using Microsoft.Data.SqlClient;

namespace Envio.Tests.Support;

/// <summary>
/// The same stack storing into SQL Server (<see cref="TestSqlServer"/>), in a database of its own that the consumers
/// create and migrate, as they would on a bare server.
/// </summary>
public sealed class SqlServerStack : EnvioStack
{
    private string? _database;

    public override string? Unavailable => TestSqlServer.Unavailable;

    protected override string[]? DatabaseArguments()
    {
        if (TestSqlServer.ConnectionString is not { } server)
        {
            return null;
        }
        _database = new SqlConnectionStringBuilder(server) { InitialCatalog = $"envio_e2e_{Guid.NewGuid():N}" }.ConnectionString;
        return [$"--ConnectionStrings:enviodb={_database}"];
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (_database is not null)
        {
            await TestSqlServer.DropDatabaseAsync(_database);
        }
    }
}
