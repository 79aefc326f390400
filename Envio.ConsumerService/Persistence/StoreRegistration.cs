using System.Data.Common;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.ConsumerService.Persistence.Postgres;
using Envio.ConsumerService.Persistence.SqlServer;
using Envio.Contracts;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Envio.ConsumerService.Persistence;

/// <summary>The database engines Envio stores data objects in.</summary>
public enum StoreEngine { SqlServer, Postgres }

/// <summary>
/// The store's connections, as configured (with their credentials, which DbUp needs): <see cref="ConnectionString"/>
/// the runtime identity's, which writes the batches and may only select and insert; <see cref="OwnerConnectionString"/>
/// (<c>ConnectionStrings:{name}-migrations</c>) the identity that owns the schema, runs the migrations and grants the
/// runtime identity its rights. Without one, a single identity does both, as every version before did.
/// </summary>
public sealed record StoreSettings(StoreEngine Engine, string ConnectionString, string? OwnerConnectionString = null)
{
    /// <summary>The suffix of the owner's connection name: <c>enviodb-migrations</c> beside <c>enviodb</c>.</summary>
    public const string OwnerConnectionSuffix = "-migrations";

    public string MigrationConnectionString => OwnerConnectionString ?? ConnectionString;
}

public static class StoreRegistration
{
    /// <summary>
    /// Wires the store for the connection named <paramref name="connectionName"/>: its writers, its probe, its
    /// migrations and the check of its tables against the registered types. The engine is read from the connection
    /// string itself (Npgsql's <c>Host=</c> or SQL Server's <c>Server=</c>/<c>Data Source=</c>), so the same build talks
    /// to whichever database the AppHost or ops hand it.
    /// </summary>
    public static StoreEngine AddEnvioStore(this IHostApplicationBuilder builder, string connectionName)
    {
        var connectionString = builder.Configuration.GetConnectionString(connectionName);
        var engine = DetectEngine(connectionName, connectionString);
        builder.RequireVerifiedDatabaseLink(connectionName, engine, connectionString!);
        var ownerConnectionString = builder.Configuration.GetConnectionString(connectionName + StoreSettings.OwnerConnectionSuffix) is { Length: > 0 } owner ? owner : null;
        if (ownerConnectionString is not null)
        {
            builder.RequireVerifiedDatabaseLink(connectionName + StoreSettings.OwnerConnectionSuffix, DetectEngine(connectionName + StoreSettings.OwnerConnectionSuffix, ownerConnectionString), ownerConnectionString);
        }
        builder.Services.AddSingleton(new StoreSettings(engine, connectionString!, ownerConnectionString));
        builder.Services.AddSingleton(ConsumerIdentity.Current);
        builder.Services.AddSingleton(new TableMaps(DataObjectTypes.Registered)); // a type that cannot be mapped stops the start here
        // The database's own health check says Degraded, not Unhealthy, when it does not answer: restarting the
        // consumer cannot fix that, and meanwhile it waits without losing anything (see StoreOutage).
        var healthChecks = builder.Services.AddHealthChecks();
        switch (engine)
        {
            case StoreEngine.Postgres:
                builder.AddNpgsqlDataSource(connectionName, settings => settings.DisableHealthChecks = true);
                healthChecks.AddNpgSql(name: $"NpgSql_{connectionName}", failureStatus: HealthStatus.Degraded);
                builder.Services.AddSingleton<IStoreWriters, PostgresWriters>();
                builder.Services.AddSingleton<IStoreProbe, PostgresProbe>();
                builder.Services.AddSingleton<IStoreMigrator, PostgresMigrator>();
                break;
            default:
                builder.AddSqlServerClient(connectionName, settings => settings.DisableHealthChecks = true);
                healthChecks.AddSqlServer(connectionString!, name: $"SqlServer_{connectionName}", failureStatus: HealthStatus.Degraded);
                builder.Services.AddSingleton<IStoreWriters, SqlServerWriters>();
                builder.Services.AddSingleton<IStoreProbe, SqlServerProbe>();
                builder.Services.AddSingleton<IStoreMigrator, SqlServerMigrator>();
                break;
        }
        builder.Services.AddHostedService<DatabaseMigrator>();
        return engine;
    }

    public static StoreEngine DetectEngine(string connectionName, string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new InvalidOperationException(
                $"No connection string named '{connectionName}': set ConnectionStrings:{connectionName} " +
                $"(environment variable ConnectionStrings__{connectionName}) to a SQL Server or PostgreSQL connection string.");
        }

        var keys = new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Select(k => k.Trim().ToLowerInvariant())
            .ToHashSet();

        if (keys.Contains("host"))
        {
            return StoreEngine.Postgres;
        }
        if (keys.Overlaps(["server", "data source", "address", "addr", "network address"]))
        {
            return StoreEngine.SqlServer;
        }
        throw new InvalidOperationException(
            $"ConnectionStrings:{connectionName} names neither a PostgreSQL server (Host=...) nor a SQL Server (Server=... or Data Source=...).");
    }
}
