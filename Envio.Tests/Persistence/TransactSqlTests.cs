using System.Reflection;
using Envio.AppHost.Hosting;
using Envio.ConsumerService.Persistence.SqlServer;
using Envio.Contracts;
using Envio.Tests.Support;
using Microsoft.SqlServer.TransactSql.ScriptDom;

namespace Envio.Tests.Persistence;

/// <summary>SQL Server cannot run here: every T-SQL statement Envio sends is at least parsed by SQL Server's own parser.</summary>
public sealed class TransactSqlTests
{
    private static readonly Assembly Consumer = typeof(SqlServerMigrator).Assembly;

    public static TheoryData<string> Statements() =>
    [
        "AppHost and consumer: create database",
        "Consumer: does the database exist",
        "AppHost: the consumer's login, owner of its database",
        "Deployment: deploy/compose/sqlserver/bootstrap.sql",
        .. DataObjectTypes.Registered.Select(type => $"Store: insert new {type.Plural}"),
        .. DataObjectTypes.Registered.SelectMany(type => SqlOf(type).RowTypes.Select(rowType => $"Store: create table type {rowType.Name}")),
        "Store: take migration lock",
        "Store: release migration lock",
        "Store: the runtime login, a user of the database",
        "Store: the runtime login's grants",
        .. Migrations(),
    ];

    private static IEnumerable<string> Migrations() =>
        Consumer.GetManifestResourceNames().Where(n => n.Contains(".Migrations.SqlServer.", StringComparison.Ordinal)).Order();

    private static string Sql(string name) => name switch
    {
        "AppHost and consumer: create database" => SqlServerDatabases.CreateIfMissing,
        "Consumer: does the database exist" => SqlServerDatabases.Exists,
        "AppHost: the consumer's login, owner of its database" =>
            "DECLARE @database sysname = N'enviodb', @login sysname = N'envio', @password nvarchar(128) = N'x', @writerLogin sysname = N'envio_writer', @writerPassword nvarchar(128) = N'y';\n" + SqlServerLogins.CreateLoginOwningDatabase,
        "Deployment: deploy/compose/sqlserver/bootstrap.sql" =>
            File.ReadAllText(Path.Combine(Envio.Tests.Support.Repository.Root, "deploy", "compose", "sqlserver", "bootstrap.sql")),
        "Store: take migration lock" => SqlServerMigrator.TakeMigrationLock,
        "Store: release migration lock" => SqlServerMigrator.ReleaseMigrationLock,
        "Store: the runtime login, a user of the database" => SqlServerWriterRights.EnsureUser,
        "Store: the runtime login's grants" => string.Join('\n', [
            SqlServerWriterRights.TableGrants("envio_writer", TestStore.Maps.Shapes.Select(t => t.Table)),
            .. TestStore.Maps.Shapes.Select(t => SqlServerWriterRights.TypeGrant("envio_writer", t.RowType)),
            .. TestStore.Maps.Shapes.Select(t => SqlServerWriterRights.TypeAsTableGrant("envio_writer", t.RowType))]),
        _ when name.StartsWith("Store: insert new ", StringComparison.Ordinal) =>
            SqlOf(DataObjectTypes.Registered.Single(t => name.EndsWith(" " + t.Plural, StringComparison.Ordinal))).InsertNew,
        _ when name.StartsWith("Store: create table type ", StringComparison.Ordinal) => DataObjectTypes.Registered.SelectMany(t => SqlOf(t).RowTypes)
            .Where(t => name.EndsWith(" " + t.Name, StringComparison.Ordinal)).Select(t => SqlServerSql.CreateTypeStatement(t.Name, t.Columns)).First(),
        _ => new StreamReader(Consumer.GetManifestResourceStream(name)!).ReadToEnd(),
    };

    /// <summary>The T-SQL the consumer generates for a type, from its table map.</summary>
    internal static SqlServerSql SqlOf(DataObjectType type) => type.Accept(new SqlOfType());

    private sealed class SqlOfType : IDataObjectTypeVisitor<SqlServerSql>
    {
        public SqlServerSql Visit<T>(DataObjectType<T> type) where T : class => SqlServerSql.Of(TestStore.Maps.For(type));
    }

    [Theory]
    [MemberData(nameof(Statements))]
    public void Statement_parses_without_errors(string name)
    {
        var errors = Parse(Sql(name));
        Assert.True(errors.Count == 0, $"{name}: {string.Join("; ", errors.Select(e => $"line {e.Line}: {e.Message}"))}");
    }

    [Fact]
    public void Every_sql_server_migration_is_checked() => Assert.NotEmpty(Migrations());

    [Fact]
    public void No_statement_uses_merge()
    {
        foreach (var name in Statements())
        {
            Assert.DoesNotContain("MERGE", Sql(name).ToUpperInvariant(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_parser_rejects_what_sql_server_would() =>
        Assert.NotEmpty(Parse("INSERT INTO orders (order_id VALUES (1);"));

    private static IList<ParseError> Parse(string sql)
    {
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);
        using var reader = new StringReader(sql);
        parser.Parse(reader, out var errors);
        return errors;
    }
}
