using DbUp;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.Security;
using Npgsql;

namespace Envio.ConsumerService.Persistence.Postgres;

/// <summary>PostgreSQL's writers: one <see cref="PostgresTableWriter{T}"/> per type, its SQL built once.</summary>
internal sealed class PostgresWriters(NpgsqlDataSource dataSource, [FromKeyedServices(KeyRing.ColumnsServiceKey)] KeyRing keys, ConsumerIdentity identity, ILoggerFactory loggers) : IStoreWriters
{
    public ITableWriter<T> WriterOf<T>(TableMap<T> map) where T : class =>
        new PostgresTableWriter<T>(dataSource, map, keys, identity, loggers.CreateLogger<PostgresWriters>());
}

/// <summary>Whether PostgreSQL takes writes: the heartbeat row written and committed on a fresh session.</summary>
internal sealed class PostgresProbe(NpgsqlDataSource dataSource, ConsumerIdentity identity) : IStoreProbe
{
    internal const string Heartbeat = """
        INSERT INTO envio_heartbeat (id, beat_at, beat_by) VALUES (1, now(), $1)
        ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, beat_by = excluded.beat_by
        """;

    public async Task<bool> TakesWritesAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
            await using var beat = new NpgsqlCommand(Heartbeat, connection) { Parameters = { new() { Value = identity.Name } } };
            await beat.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or System.Net.Sockets.SocketException)
        {
            return false; // PostgresException too: read-only (25006), a full disk (53100), no privilege (42501)
        }
    }
}

/// <summary>PostgreSQL's migrations (DbUp, under an advisory lock) and its catalog (information_schema).</summary>
internal sealed partial class PostgresMigrator(NpgsqlDataSource dataSource, StoreSettings settings, ILogger<PostgresMigrator> logger) : IStoreMigrator
{
    /// <summary>Any fixed number: the advisory lock every replica takes before migrating.</summary>
    internal const long MigrationLockKey = 0x456E76696F;

    internal const string SelectColumns = """
        SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, is_nullable = 'YES'
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = ANY($1)
        ORDER BY table_name, ordinal_position
        """;

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var lockConnection = new NpgsqlConnection(settings.MigrationConnectionString);
        await lockConnection.OpenAsync(cancellationToken);
        await using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({MigrationLockKey})", lockConnection)
        {
            CommandTimeout = Migrations.LockCommandTimeoutSeconds,
        })
        {
            await take.ExecuteNonQueryAsync(cancellationToken);
        }
        try
        {
            // DbUp opens its own connections; the lock above, held on another session, makes replicas take turns.
            Migrations.Apply(DeployChanges.To.PostgresqlDatabase(settings.MigrationConnectionString), "Postgres", logger);
        }
        finally
        {
            await using var release = new NpgsqlCommand($"SELECT pg_advisory_unlock({MigrationLockKey})", lockConnection);
            await release.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    public async Task GrantWritingAsync(IReadOnlyList<TableShape> tables, CancellationToken cancellationToken)
    {
        var runtime = new NpgsqlConnectionStringBuilder(settings.ConnectionString).Username;
        if (settings.OwnerConnectionString is null || runtime is null
            || runtime == new NpgsqlConnectionStringBuilder(settings.OwnerConnectionString).Username)
        {
            return;
        }
        await using var connection = new NpgsqlConnection(settings.OwnerConnectionString);
        await connection.OpenAsync(cancellationToken);
        string database, schema;
        await using (var where = new NpgsqlCommand("SELECT current_database(), current_schema()", connection))
        await using (var reader = await where.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            (database, schema) = (reader.GetString(0), reader.GetString(1));
        }
        await using var grant = new NpgsqlCommand(PostgresWriterRights.Grants(database, schema, runtime, tables.Select(t => t.Table)), connection);
        await grant.ExecuteNonQueryAsync(cancellationToken);
        LogGranted(logger, runtime, tables.Count);
    }

    [LoggerMessage(LogLevel.Information, "The runtime role {Role} may select and insert on the {Tables} tables of the registered types, and update the heartbeat; nothing else.")]
    private static partial void LogGranted(ILogger logger, string role, int tables);

    public async Task<IReadOnlyList<string>> SchemaProblemsAsync(IReadOnlyList<TableShape> expected, CancellationToken cancellationToken)
    {
        var catalog = expected.ToDictionary(t => t.Table, _ => new List<CatalogColumn>());
        await using (var connection = await dataSource.OpenConnectionAsync(cancellationToken))
        await using (var select = new NpgsqlCommand(SelectColumns, connection) { Parameters = { new() { Value = catalog.Keys.ToArray() } } })
        await using (var reader = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                catalog[reader.GetString(0)].Add(new CatalogColumn(reader.GetString(1), reader.GetString(2),
                    reader.IsDBNull(3) ? (reader.GetString(2) is "text" or "bytea" ? -1 : null) : reader.GetInt32(3),
                    reader.IsDBNull(4) ? null : reader.GetInt32(4), reader.IsDBNull(5) ? null : reader.GetInt32(5), reader.GetBoolean(6)));
            }
        }
        return [.. expected.SelectMany(table => SchemaCheck.Problems(table.Table, table.Columns, catalog[table.Table], TypeProblem))];
    }

    /// <summary>
    /// What binary COPY can write into: the exact type (COPY sends each value in its type's binary form, which the
    /// column reads as is), any text type for text, and a numeric that keeps four decimals and fifteen digits before them.
    /// </summary>
    private static string? TypeProblem(ColumnShape expected, CatalogColumn found)
    {
        string[] accepted = expected.Type switch
        {
            ColumnType.Uuid => ["uuid"],
            ColumnType.Text => ["character varying", "text"],
            ColumnType.FixedText => ["character", "character varying", "text"],
            ColumnType.Bytes => ["bytea"],
            ColumnType.Numeric => ["numeric"],
            ColumnType.Small => ["smallint"],
            ColumnType.Whole => ["integer"],
            ColumnType.Big => ["bigint"],
            ColumnType.Boolean => ["boolean"],
            ColumnType.Timestamp => ["timestamp with time zone"],
            ColumnType.Date => ["date"],
            _ => [],
        };
        if (!accepted.Contains(found.DataType, StringComparer.Ordinal))
        {
            return $"its type is {found.DataType}, not {string.Join(" or ", accepted)}";
        }
        if (expected.Type == ColumnType.Numeric && found.Precision is { } precision
            && (found.Scale < ColumnShape.DecimalScale || precision - found.Scale < ColumnShape.DecimalPrecision - ColumnShape.DecimalScale))
        {
            return $"numeric({precision},{found.Scale}) cannot hold every decimal({ColumnShape.DecimalPrecision},{ColumnShape.DecimalScale})";
        }
        return null;
    }
}
