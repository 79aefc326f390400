using System.Data;
using DbUp;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.Security;
using Microsoft.Data.SqlClient;

namespace Envio.ConsumerService.Persistence.SqlServer;

/// <summary>SQL Server's writers: one <see cref="SqlServerTableWriter{T}"/> per type, its T-SQL built once.</summary>
internal sealed class SqlServerWriters(StoreSettings settings, [FromKeyedServices(KeyRing.ColumnsServiceKey)] KeyRing keys, ConsumerIdentity identity, ILoggerFactory loggers) : IStoreWriters
{
    public ITableWriter<T> WriterOf<T>(TableMap<T> map) where T : class =>
        new SqlServerTableWriter<T>(settings, map, keys, identity, loggers.CreateLogger<SqlServerWriters>());
}

/// <summary>Whether SQL Server takes writes: the heartbeat row written and committed on a fresh connection.</summary>
internal sealed class SqlServerProbe(StoreSettings settings, ConsumerIdentity identity) : IStoreProbe
{
    // Insert-if-absent without MERGE; two probes inserting the first row at once fail one of them, which probes again.
    internal const string Heartbeat = """
        UPDATE dbo.envio_heartbeat SET beat_at = SYSDATETIMEOFFSET(), beat_by = @by WHERE id = 1;
        IF @@ROWCOUNT = 0 INSERT INTO dbo.envio_heartbeat (id, beat_at, beat_by) VALUES (1, SYSDATETIMEOFFSET(), @by);
        """;

    public async Task<bool> TakesWritesAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new SqlConnection(settings.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var beat = new SqlCommand(Heartbeat, connection);
            beat.Parameters.Add("@by", SqlDbType.NVarChar, 128).Value = identity.Name;
            await beat.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is SqlException or InvalidOperationException or TimeoutException or IOException)
        {
            return false; // InvalidOperationException: no connection came from the pool in time; SqlException too:
                          // read-only (3906), a full log (9002), no permission (229)
        }
    }
}

/// <summary>
/// SQL Server's migrations (DbUp, under <c>sp_getapplock</c>, after creating the database on a bare server) and its
/// catalog: the tables' columns (INFORMATION_SCHEMA, which Babelfish keeps as SQL Server does) and the table types.
/// </summary>
internal sealed partial class SqlServerMigrator(StoreSettings settings, ILogger<SqlServerMigrator> logger) : IStoreMigrator
{
    internal const string TakeMigrationLock = """
        DECLARE @result int;
        EXEC @result = sys.sp_getapplock @Resource = N'envio-migrations', @LockMode = N'Exclusive', @LockOwner = N'Session', @LockTimeout = @wait_ms;
        IF @result < 0 THROW 51000, N'Could not take the envio-migrations lock.', 1;
        """;

    internal const string ReleaseMigrationLock =
        "EXEC sys.sp_releaseapplock @Resource = N'envio-migrations', @LockOwner = N'Session';";

    internal const string SelectColumns = """
        SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE
        FROM INFORMATION_SCHEMA.COLUMNS
        WHERE TABLE_SCHEMA = N'dbo'
        ORDER BY TABLE_NAME, ORDINAL_POSITION;
        """;

    internal const string SelectTableTypeColumns = """
        SELECT tt.name, c.name, t.name, c.max_length, c.precision, c.scale, c.is_nullable
        FROM sys.table_types AS tt
        JOIN sys.columns AS c ON c.object_id = tt.type_table_object_id
        JOIN sys.types AS t ON t.user_type_id = c.user_type_id
        WHERE SCHEMA_NAME(tt.schema_id) = N'dbo'
        ORDER BY tt.name, c.column_id;
        """;

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await SqlServerDatabases.EnsureExistsAsync(settings.MigrationConnectionString, cancellationToken); // a bare server (compose)
        await using var lockConnection = new SqlConnection(settings.MigrationConnectionString);
        await lockConnection.OpenAsync(cancellationToken);
        await using (var take = TakeMigrationLockCommand(lockConnection))
        {
            await take.ExecuteNonQueryAsync(cancellationToken);
        }
        try
        {
            // DbUp opens its own connections; the session lock above makes replicas take turns.
            Migrations.Apply(DeployChanges.To.SqlDatabase(settings.MigrationConnectionString), "SqlServer", logger);
        }
        finally
        {
            await using var release = new SqlCommand(ReleaseMigrationLock, lockConnection);
            await release.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    public async Task GrantWritingAsync(IReadOnlyList<TableShape> tables, CancellationToken cancellationToken)
    {
        var runtime = new SqlConnectionStringBuilder(settings.ConnectionString).UserID;
        if (settings.OwnerConnectionString is null || string.IsNullOrEmpty(runtime)
            || string.Equals(runtime, new SqlConnectionStringBuilder(settings.OwnerConnectionString).UserID, StringComparison.OrdinalIgnoreCase))
        {
            return; // one identity, or one the server authenticates otherwise (Entra ID): its rights are the operator's to grant
        }
        await using var connection = new SqlConnection(settings.OwnerConnectionString);
        await connection.OpenAsync(cancellationToken);
        try
        {
            await using var user = new SqlCommand(SqlServerWriterRights.EnsureUser, connection);
            user.Parameters.Add("@runtimeUser", SqlDbType.NVarChar, 128).Value = runtime;
            await user.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (SqlException e) when (e.Number == SqlServerWriterRights.NoSuchLogin)
        {
            throw new InvalidOperationException(
                $"The login '{runtime}' of ConnectionStrings:enviodb does not exist on the server: create it first, as the deployment's bootstrap step does " +
                "(deploy/compose/sqlserver/bootstrap.sql), with CREATE LOGIN only; the consumer's migrations then make it a user of the database and grant it what writing needs.", e);
        }
        await using (var grant = new SqlCommand(SqlServerWriterRights.TableGrants(runtime, tables.Select(t => t.Table)), connection))
        {
            await grant.ExecuteNonQueryAsync(cancellationToken);
        }
        foreach (var rowType in tables.Select(t => t.RowType).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            try
            {
                await using var execute = new SqlCommand(SqlServerWriterRights.TypeGrant(runtime, rowType), connection);
                await execute.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (SqlException e) when (e.Message.Contains("not currently supported", StringComparison.Ordinal))
            {
                // Babelfish keeps a table type as a table and has no grant on a TYPE: what reading the batch needs there.
                await using var select = new SqlCommand(SqlServerWriterRights.TypeAsTableGrant(runtime, rowType), connection);
                await select.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        LogGranted(logger, runtime, tables.Count);
    }

    [LoggerMessage(LogLevel.Information, "The runtime login {Login} may select and insert on the {Tables} tables of the registered types, use their table types and update the heartbeat; nothing else.")]
    private static partial void LogGranted(ILogger logger, string login, int tables);

    /// <summary>Takes the migration lock for the connection's session, waiting up to <see cref="Migrations.LockWait"/>.</summary>
    internal static SqlCommand TakeMigrationLockCommand(SqlConnection connection) =>
        new(TakeMigrationLock, connection)
        {
            CommandTimeout = Migrations.LockCommandTimeoutSeconds,
            Parameters = { new SqlParameter("@wait_ms", SqlDbType.Int) { Value = (int)Migrations.LockWait.TotalMilliseconds } },
        };

    public async Task<IReadOnlyList<string>> SchemaProblemsAsync(IReadOnlyList<TableShape> expected, CancellationToken cancellationToken)
    {
        var tables = new Dictionary<string, List<CatalogColumn>>(StringComparer.OrdinalIgnoreCase);
        var types = new Dictionary<string, List<CatalogColumn>>(StringComparer.OrdinalIgnoreCase);
        for (var attempt = 1; ; attempt++)
        {
            await using var connection = new SqlConnection(settings.ConnectionString);
            try
            {
                await connection.OpenAsync(cancellationToken);
                await ReadAsync(connection, SelectColumns, tables, maxLengthInCharacters: true, cancellationToken);
                await ReadAsync(connection, SelectTableTypeColumns, types, maxLengthInCharacters: false, cancellationToken);
                break;
            }
            catch (SqlException) when (attempt < 3)
            {
                // Babelfish fails a catalog query now and then (an internal error of its deparser) and keeps failing it
                // on that session: read again, on a new one.
                SqlConnection.ClearPool(connection);
                (tables, types) = (new(StringComparer.OrdinalIgnoreCase), new(StringComparer.OrdinalIgnoreCase));
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }

        var problems = new List<string>();
        foreach (var table in expected)
        {
            problems.AddRange(SchemaCheck.Problems(table.Table, table.Columns, tables.GetValueOrDefault(table.Table) ?? [], TypeProblem));
            if (RowTypeProblem(table, types.GetValueOrDefault(table.RowType)) is { } problem)
            {
                problems.Add(problem);
            }
        }
        return problems;
    }

    private static async Task ReadAsync(
        SqlConnection connection, string query, Dictionary<string, List<CatalogColumn>> into, bool maxLengthInCharacters, CancellationToken cancellationToken)
    {
        await using var select = new SqlCommand(query, connection);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var dataType = reader.GetString(2);
            int? maxLength = reader.IsDBNull(3) ? null : Convert.ToInt32(reader.GetValue(3), System.Globalization.CultureInfo.InvariantCulture);
            if (!maxLengthInCharacters && maxLength is { } bytes and > 0 && dataType is "nvarchar" or "nchar")
            {
                maxLength = bytes / 2; // sys.columns counts bytes
            }
            var nullable = reader.GetValue(6) switch { string text => text == "YES", var flag => Convert.ToBoolean(flag, System.Globalization.CultureInfo.InvariantCulture) };
            var column = new CatalogColumn(reader.GetString(1), dataType, maxLength,
                reader.IsDBNull(4) ? null : Convert.ToInt32(reader.GetValue(4), System.Globalization.CultureInfo.InvariantCulture),
                reader.IsDBNull(5) ? null : Convert.ToInt32(reader.GetValue(5), System.Globalization.CultureInfo.InvariantCulture), nullable);
            var name = reader.GetString(0);
            if (!into.TryGetValue(name, out var columns))
            {
                into[name] = columns = [];
            }
            columns.Add(column);
        }
    }

    /// <summary>What SqlBulkCopy and the INSERT can write into: the type itself or a wider one of its kind.</summary>
    private static string? TypeProblem(ColumnShape expected, CatalogColumn found)
    {
        string[] accepted = expected.Type switch
        {
            ColumnType.Uuid => ["uniqueidentifier"],
            ColumnType.Text => ["nvarchar", "nchar"],
            ColumnType.FixedText => ["char", "nchar", "varchar", "nvarchar"],
            ColumnType.Bytes => ["varbinary"],
            ColumnType.Numeric => ["decimal", "numeric"],
            ColumnType.Small => ["smallint", "int", "bigint"],
            ColumnType.Whole => ["int", "bigint"],
            ColumnType.Big => ["bigint"],
            ColumnType.Boolean => ["bit"],
            ColumnType.Timestamp => ["datetimeoffset"],
            ColumnType.Date => ["date", "datetime2"],
            _ => [],
        };
        if (!accepted.Contains(found.DataType, StringComparer.OrdinalIgnoreCase))
        {
            return $"its type is {found.DataType}, not {string.Join(" or ", accepted)}";
        }
        if (expected.Type == ColumnType.Bytes && found.MaxLength is not -1)
        {
            return $"varbinary({found.MaxLength}) may be too short for a sealed value: use varbinary(max)";
        }
        if (expected.Type == ColumnType.Numeric && found.Precision is { } precision
            && (found.Scale < ColumnShape.DecimalScale || precision - found.Scale < ColumnShape.DecimalPrecision - ColumnShape.DecimalScale))
        {
            return $"decimal({precision},{found.Scale}) cannot hold every decimal({ColumnShape.DecimalPrecision},{ColumnShape.DecimalScale})";
        }
        return null;
    }

    /// <summary>
    /// The table type a type's rows travel in must have exactly the columns the writer sends, in order; when it does not,
    /// the problem says how a migration creates it.
    /// </summary>
    private static string? RowTypeProblem(TableShape table, List<CatalogColumn>? found)
    {
        var create = SqlServerSql.CreateTypeStatement(table.RowType, table.RowTypeColumns);
        if (found is null)
        {
            return $"the table type dbo.{table.RowType} (the rows of {table.Table} in a batch) does not exist; create it:\n{create}";
        }
        var expected = table.RowTypeColumns.Select(c => (c.Name, Type: SqlServerSql.RowTypeOf(c), c.Nullable)).ToList();
        var actual = found.Select(c => (c.Name, Type: RowTypeName(c), c.Nullable)).ToList();
        return expected.SequenceEqual(actual, RowTypeColumnComparer.Instance)
            ? null
            : $"the table type dbo.{table.RowType} has the columns ({string.Join(", ", actual.Select(c => $"{c.Name} {c.Type}"))}), " +
              $"not what {table.Table}'s rows need; table types cannot change: create one under a new name and name it in [DataObject(SqlServerRowType = ...)]:\n{create}";
    }

    private static string RowTypeName(CatalogColumn column) => column.DataType.ToLowerInvariant() switch
    {
        "nvarchar" or "varbinary" or "varchar" when column.MaxLength is -1 => $"{column.DataType.ToLowerInvariant()}(max)",
        "nvarchar" or "varbinary" or "varchar" or "char" or "nchar" => $"{column.DataType.ToLowerInvariant()}({column.MaxLength})",
        "decimal" or "numeric" => $"decimal({column.Precision},{column.Scale})",
        // Babelfish keeps microseconds and reports a datetimeoffset(7) column with scale 6.
        "datetimeoffset" => column.Scale >= 6 ? "datetimeoffset(7)" : $"datetimeoffset({column.Scale})",
        var name => name,
    };

    private sealed class RowTypeColumnComparer : IEqualityComparer<(string Name, string Type, bool Nullable)>
    {
        public static readonly RowTypeColumnComparer Instance = new();

        public bool Equals((string Name, string Type, bool Nullable) x, (string Name, string Type, bool Nullable) y) =>
            string.Equals(x.Name, y.Name, StringComparison.OrdinalIgnoreCase) && string.Equals(x.Type, y.Type, StringComparison.OrdinalIgnoreCase) && x.Nullable == y.Nullable;

        public int GetHashCode((string Name, string Type, bool Nullable) obj) => StringComparer.OrdinalIgnoreCase.GetHashCode(obj.Name);
    }
}
