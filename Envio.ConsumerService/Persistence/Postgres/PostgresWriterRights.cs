namespace Envio.ConsumerService.Persistence.Postgres;

/// <summary>
/// What the consumer's runtime role may do in PostgreSQL, granted by the role that owns the schema after every
/// migration (so a table a later migration adds is covered at the next start): connect, stage a batch in temporary
/// tables, select and insert on the registered types' tables, and write the heartbeat's one row. No UPDATE or DELETE of
/// a stored object, no DDL: the password the consumer runs with cannot alter or erase what is stored.
/// </summary>
internal static class PostgresWriterRights
{
    public const string HeartbeatTable = "envio_heartbeat";

    public static string Grants(string database, string schema, string role, IEnumerable<string> tables)
    {
        var grantee = Quote(role);
        var qualified = tables.Distinct(StringComparer.Ordinal).Select(table => $"{Quote(schema)}.{Quote(table)}");
        return string.Join('\n',
            $"GRANT CONNECT, TEMPORARY ON DATABASE {Quote(database)} TO {grantee};",
            $"GRANT USAGE ON SCHEMA {Quote(schema)} TO {grantee};",
            $"GRANT SELECT, INSERT ON {string.Join(", ", qualified)} TO {grantee};",
            $"GRANT SELECT, INSERT, UPDATE ON {Quote(schema)}.{Quote(HeartbeatTable)} TO {grantee};");
    }

    private static string Quote(string identifier) => $"\"{identifier.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
}
