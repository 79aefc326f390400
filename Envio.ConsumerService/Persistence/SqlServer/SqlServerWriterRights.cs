namespace Envio.ConsumerService.Persistence.SqlServer;

/// <summary>
/// What the consumer's runtime login may do in SQL Server, granted by the database's owner after every migration (so a
/// table a later migration adds is covered at the next start): be a user of the database, select and insert on the
/// registered types' tables, pass their table types, and write the heartbeat's one row. No UPDATE or DELETE of a stored
/// object, no DDL, no role: the password the consumer runs with cannot alter or erase what is stored.
/// </summary>
internal static class SqlServerWriterRights
{
    public const string HeartbeatTable = "envio_heartbeat";

    /// <summary>Thrown by <see cref="EnsureUser"/> for a login the server does not have (SQL Server's own 15007 is not Babelfish's).</summary>
    public const int NoSuchLogin = 51001;

    /// <summary>The login (created by the bootstrap step, server-level) becomes a user of this database; <c>@runtimeUser</c> names it.</summary>
    public const string EnsureUser = """
        DECLARE @user sysname = @runtimeUser;
        IF USER_ID(@user) IS NULL AND SUSER_ID(@user) IS NULL
            THROW 51001, N'The runtime login does not exist on the server.', 1;
        IF USER_ID(@user) IS NULL
        BEGIN
            DECLARE @createUser nvarchar(400) = N'CREATE USER ' + QUOTENAME(@user) + N' FOR LOGIN ' + QUOTENAME(@user);
            EXEC sys.sp_executesql @createUser;
        END;
        """;

    public static string TableGrants(string user, IEnumerable<string> tables) => string.Join('\n',
        tables.Distinct(StringComparer.OrdinalIgnoreCase).Select(table => $"GRANT SELECT, INSERT ON dbo.{Quote(table)} TO {Quote(user)};")
            .Append($"GRANT SELECT, INSERT, UPDATE ON dbo.{Quote(HeartbeatTable)} TO {Quote(user)};"));

    public static string TypeGrant(string user, string rowType) => $"GRANT EXECUTE ON TYPE::dbo.{Quote(rowType)} TO {Quote(user)};";

    public static string TypeAsTableGrant(string user, string rowType) => $"GRANT SELECT, INSERT ON dbo.{Quote(rowType)} TO {Quote(user)};";

    private static string Quote(string identifier) => $"[{identifier.Replace("]", "]]", StringComparison.Ordinal)}]";
}
