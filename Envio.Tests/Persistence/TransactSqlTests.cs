using System.Reflection;
using Envio.AppHost.Hosting;
using Envio.ConsumerService.Persistence;
using Microsoft.SqlServer.TransactSql.ScriptDom;

namespace Envio.Tests.Persistence;

/// <summary>SQL Server cannot run here: every T-SQL statement Envio sends is at least parsed by SQL Server's own parser.</summary>
public sealed class TransactSqlTests
{
    private static readonly Assembly Consumer = typeof(SqlServerOrderStore).Assembly;

    public static TheoryData<string> Statements() =>
    [
        "AppHost and consumer: create database",
        "AppHost: the consumer's login, owner of its database",
        "Deployment: deploy/compose/sqlserver/bootstrap.sql",
        "Store: insert new orders",
        "Store: take migration lock",
        "Store: release migration lock",
        .. Migrations(),
    ];

    private static IEnumerable<string> Migrations() =>
        Consumer.GetManifestResourceNames().Where(n => n.Contains(".Migrations.SqlServer.", StringComparison.Ordinal)).Order();

    private static string Sql(string name) => name switch
    {
        "AppHost and consumer: create database" => Microsoft.Extensions.Hosting.SqlServerDatabases.CreateIfMissing,
        "AppHost: the consumer's login, owner of its database" =>
            "DECLARE @database sysname = N'enviodb', @login sysname = N'envio', @password nvarchar(128) = N'x';\n" + SqlServerLogins.CreateLoginOwningDatabase,
        "Deployment: deploy/compose/sqlserver/bootstrap.sql" =>
            File.ReadAllText(Path.Combine(Envio.Tests.Support.Repository.Root, "deploy", "compose", "sqlserver", "bootstrap.sql")),
        "Store: insert new orders" => SqlServerOrderStore.InsertNew,
        "Store: take migration lock" => SqlServerOrderStore.TakeMigrationLock,
        "Store: release migration lock" => SqlServerOrderStore.ReleaseMigrationLock,
        _ => new StreamReader(Consumer.GetManifestResourceStream(name)!).ReadToEnd(),
    };

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
