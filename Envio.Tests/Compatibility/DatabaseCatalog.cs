using System.Data.Common;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Envio.Tests.Compatibility;

/// <summary>
/// What the database holds for Envio, read from the catalog as the engine describes it: tables with their columns
/// and constraints (and indexes where the engine names them stably), SQL Server's table types, and the migration
/// journal. Keyed by name, in name order, so a snapshot reads like the schema and compares member by member.
/// </summary>
public static partial class DatabaseCatalog
{
    /// <summary>PostgreSQL: information_schema for the columns, pg_constraint and pg_indexes for the rest.</summary>
    public static async Task<JsonObject> PostgresAsync(DbDataSource database)
    {
        var tables = await TablesAsync(database,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'", "columns", "constraints", "indexes");
        await ForEachRowAsync(database, """
            SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length, numeric_precision,
                   numeric_scale, is_nullable, column_default
            FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position
            """, row => Member(tables, row, "columns", new JsonObject
        {
            ["ordinal"] = Number(row[2]),
            ["dataType"] = Text(row[3]),
            ["maxLength"] = Number(row[4]),
            ["precision"] = Number(row[5]),
            ["scale"] = Number(row[6]),
            ["nullable"] = Text(row[7]) == "YES",
            ["default"] = Text(row[8]),
        }));
        // pg_constraint, not information_schema.table_constraints: the latter lists every NOT NULL as a CHECK named
        // after object ids, which differ from one database to the next (the columns' nullability says it already).
        await ForEachRowAsync(database, """
            SELECT cl.relname, c.conname, c.contype::text, pg_get_constraintdef(c.oid)
            FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
            WHERE n.nspname = 'public' ORDER BY cl.relname, c.conname
            """, row => Member(tables, row, "constraints", new JsonObject
        {
            ["type"] = Text(row[2]),
            ["definition"] = Text(row[3]),
        }));
        await ForEachRowAsync(database,
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname",
            row => Member(tables, row, "indexes", JsonValue.Create(Text(row[2]))));
        return new JsonObject { ["tables"] = tables };
    }

    /// <summary>
    /// SQL Server, in queries Babelfish answers alike: INFORMATION_SCHEMA for tables, columns and constraints, and the
    /// sys views for table types and indexes. Babelfish lower-cases names in its sys views (and the table names of
    /// some INFORMATION_SCHEMA views, and constraint names), so tables are matched without regard to case, as SQL
    /// Server's default collation does anyway. What Babelfish does not report faithfully is left out: see
    /// <see cref="SqlServerIndexesAsync"/>.
    /// </summary>
    public static async Task<JsonObject> SqlServerAsync(DbDataSource database)
    {
        var tables = await TablesAsync(database,
            "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'dbo' AND TABLE_TYPE = 'BASE TABLE'", "columns", "constraints", "indexes");
        await ForEachRowAsync(database, """
            SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION,
                   NUMERIC_SCALE, DATETIME_PRECISION, IS_NULLABLE, COLUMN_DEFAULT,
                   COLUMNPROPERTY(OBJECT_ID(TABLE_SCHEMA + '.' + TABLE_NAME), COLUMN_NAME, 'IsIdentity')
            FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'dbo' ORDER BY TABLE_NAME, ORDINAL_POSITION
            """, row => Member(tables, row, "columns", new JsonObject
        {
            ["ordinal"] = Number(row[2]),
            ["dataType"] = Text(row[3]),
            ["maxLength"] = Number(row[4]),
            ["precision"] = Number(row[5]),
            ["scale"] = Number(row[6]),
            ["datetimePrecision"] = Number(row[7]),
            ["nullable"] = Text(row[8]) == "YES",
            ["default"] = Text(row[9]),
            ["identity"] = Number(row[10]) == 1,
        }));
        // The check clauses one constraint at a time, by name: Babelfish's view deparses the check constraints of
        // every database on the server that a query does not filter out by name, and in a full test run one of them
        // (another test's database) fails its deparser ("unrecognized node type").
        var constraints = new List<object?[]>();
        await ForEachRowAsync(database, """
            SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS
            WHERE TABLE_SCHEMA = 'dbo' ORDER BY TABLE_NAME, CONSTRAINT_NAME
            """, constraints.Add);
        foreach (var row in constraints)
        {
            string? check = null;
            if (Text(row[2]) == "CHECK")
            {
                await ForEachRowAsync(database,
                    $"SELECT CHECK_CLAUSE FROM INFORMATION_SCHEMA.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = 'dbo' AND CONSTRAINT_NAME = '{Text(row[1])!.Replace("'", "''", StringComparison.Ordinal)}'",
                    clause => check = Text(clause[0]));
            }
            Member(tables, row, "constraints", new JsonObject { ["type"] = Text(row[2]), ["check"] = check });
        }

        var types = new JsonObject();
        await ForEachRowAsync(database, """
            SELECT tt.name, c.name, c.column_id, t.name, c.max_length, c.precision, c.scale, c.is_nullable
            FROM sys.table_types tt
            JOIN sys.columns c ON c.object_id = tt.type_table_object_id
            JOIN sys.types t ON t.user_type_id = c.user_type_id
            WHERE tt.is_user_defined = 1 AND SCHEMA_NAME(tt.schema_id) = 'dbo'
            ORDER BY tt.name, c.column_id
            """, row =>
        {
            var type = Text(row[0])!;
            if (types[type] is not JsonObject entry)
            {
                types[type] = entry = new JsonObject { ["columns"] = new JsonObject() };
            }
            entry["columns"]![Text(row[1])!] = new JsonObject
            {
                ["ordinal"] = Number(row[2]),
                ["dataType"] = Text(row[3]),
                ["maxLength"] = Number(row[4]),
                ["precision"] = Number(row[5]),
                ["scale"] = Number(row[6]),
                ["nullable"] = Convert.ToBoolean(row[7], CultureInfo.InvariantCulture),
            };
        });
        await SqlServerIndexesAsync(database, tables);
        return new JsonObject { ["tables"] = tables, ["types"] = types };
    }

    /// <summary>
    /// Each index by name, with its key columns in order, its included columns, and whether it is unique or the
    /// primary key. Babelfish gives an index that is not a constraint the name it was created with, followed by the
    /// table's name and a hash of both (<c>cx_orders_row_id</c> is <c>cx_orders_row_idorders</c> and 32 hex digits,
    /// the same in every database): that suffix is taken off. Left out: the index type (Babelfish reports every index
    /// NONCLUSTERED, the clustered <c>cx_orders_row_id</c> too) and the heap rows without a name.
    /// </summary>
    private static async Task SqlServerIndexesAsync(DbDataSource database, JsonObject tables)
    {
        await ForEachRowAsync(database, """
            SELECT t.name, i.name, i.is_unique, i.is_primary_key, ic.is_included_column, c.name
            FROM sys.indexes i
            JOIN sys.tables t ON t.object_id = i.object_id
            JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
            JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
            WHERE SCHEMA_NAME(t.schema_id) = 'dbo' AND i.name IS NOT NULL
            ORDER BY t.name, i.name, ic.is_included_column, ic.key_ordinal, c.name
            """, row =>
        {
            if (Table(tables, Text(row[0])!)?["indexes"] is not JsonObject indexes)
            {
                return;
            }
            var table = Text(row[0])!;
            var name = Text(row[1])!;
            if (BabelfishIndexSuffix().Match(name) is { Success: true } mangled
                && name[..mangled.Index].EndsWith(table, StringComparison.OrdinalIgnoreCase))
            {
                name = name[..(mangled.Index - table.Length)];
            }
            if (indexes[name] is not JsonObject index)
            {
                indexes[name] = index = new JsonObject
                {
                    ["unique"] = Convert.ToBoolean(row[2], CultureInfo.InvariantCulture),
                    ["primaryKey"] = Convert.ToBoolean(row[3], CultureInfo.InvariantCulture),
                    ["columns"] = new JsonArray(),
                    ["included"] = new JsonArray(),
                };
            }
            index[Convert.ToBoolean(row[4], CultureInfo.InvariantCulture) ? "included" : "columns"]!.AsArray().Add(Text(row[5]));
        });
    }

    [GeneratedRegex("[0-9a-f]{32}$")]
    private static partial Regex BabelfishIndexSuffix();

    /// <summary>The scripts the migration journal (DbUp's schemaversions) says were applied, in the order they were.</summary>
    public static async Task<JsonArray> JournalAsync(DbDataSource database, string query)
    {
        var scripts = new JsonArray();
        await ForEachRowAsync(database, query, row => scripts.Add(Text(row[0])));
        return scripts;
    }

    private static async Task<JsonObject> TablesAsync(DbDataSource database, string query, params string[] parts)
    {
        var names = new List<string>();
        await ForEachRowAsync(database, query, row => names.Add(Text(row[0])!));
        var tables = new JsonObject();
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            tables[name] = new JsonObject(parts.Select(part => KeyValuePair.Create<string, JsonNode?>(part, new JsonObject())));
        }
        return tables;
    }

    /// <summary>Adds a member (a column, a constraint, an index) to its table, when the table is one of those listed.</summary>
    private static void Member(JsonObject tables, object?[] row, string part, JsonNode? value)
    {
        if (Table(tables, Text(row[0])!) is { } table)
        {
            table[part]![Text(row[1])!] = value;
        }
    }

    /// <summary>The table of that name, in any case (Babelfish's views do not agree on it).</summary>
    private static JsonObject? Table(JsonObject tables, string name) =>
        tables.FirstOrDefault(t => string.Equals(t.Key, name, StringComparison.OrdinalIgnoreCase)).Value as JsonObject;

    private static async Task ForEachRowAsync(DbDataSource database, string query, Action<object?[]> read)
    {
        // Babelfish can fail a catalog query now and then ("unrecognized node type", in its deparser), and keeps failing
        // it on that session: read it whole again, on a new session.
        for (var attempt = 1; ; attempt++)
        {
            var rows = new List<object?[]>();
            try
            {
                await using var command = database.CreateCommand(query);
                await using var reader = await command.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    var row = new object?[reader.FieldCount];
                    reader.GetValues(row!);
                    rows.Add([.. row.Select(v => v is DBNull ? null : v)]);
                }
            }
            catch (DbException e) when (attempt < 12 && e.Message.Contains("unrecognized node type", StringComparison.Ordinal))
            {
                // The error stays with the session (the same backend fails it again and again): read on a new one. It
                // has also lasted seconds across sessions (the views deparse the constraints of every database on the
                // server, another test's among them): up to half a minute in all.
                Microsoft.Data.SqlClient.SqlConnection.ClearAllPools();
                await Task.Delay(TimeSpan.FromMilliseconds(500 * Math.Min(attempt, 6)));
                continue;
            }
            catch (DbException e)
            {
                throw new InvalidOperationException($"{e.Message} (in: {query})", e);
            }
            rows.ForEach(read);
            return;
        }
    }

    private static string? Text(object? value) => value is null ? null : Convert.ToString(value, CultureInfo.InvariantCulture);

    private static int? Number(object? value) => value is null ? null : Convert.ToInt32(value, CultureInfo.InvariantCulture);
}
