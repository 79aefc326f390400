using Envio.ConsumerService.Persistence.Mapping;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// Before the consumer takes its first message (hosted services start in order, and this one is registered before
/// the consumer): applies the migrations, then compares every registered type's tables with the database's catalog.
/// A table that cannot hold what its type sends refuses the start, naming the table and the column, instead of
/// failing on the first batch.
/// </summary>
public sealed class DatabaseMigrator(IStoreMigrator migrator, TableMaps maps) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await migrator.MigrateAsync(cancellationToken);
        await migrator.GrantWritingAsync(maps.Shapes, cancellationToken); // before the check: it reads the catalog as the runtime identity
        var problems = await migrator.SchemaProblemsAsync(maps.Shapes, cancellationToken);
        if (problems.Count > 0)
        {
            throw new InvalidOperationException(
                "The database does not fit the registered data objects (add what is missing in a migration; docs/development.md, " +
                $"\"Adding a data object\"):\n - {string.Join("\n - ", problems)}");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
