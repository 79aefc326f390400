using Envio.AppHost.Hosting;
using Microsoft.SqlServer.TransactSql.ScriptDom;

namespace Envio.Tests.Persistence;

/// <summary>SQL Server cannot run here: every T-SQL statement Envio sends is at least parsed by SQL Server's own parser.</summary>
public sealed class TransactSqlTests
{
    public static TheoryData<string, string> Statements() => new()
    {
        { "AppHost: create database", SqlServerBuilderExtensions.CreateDatabaseIfMissing },
    };

    [Theory]
    [MemberData(nameof(Statements))]
    public void Statement_parses_without_errors(string name, string sql)
    {
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);
        using var reader = new StringReader(sql);
        parser.Parse(reader, out var errors);
        Assert.True(errors.Count == 0, $"{name}: {string.Join("; ", errors.Select(e => $"line {e.Line}: {e.Message}"))}");
    }

    [Fact]
    public void The_parser_rejects_what_sql_server_would()
    {
        var parser = new TSql160Parser(initialQuotedIdentifiers: true);
        using var reader = new StringReader("INSERT INTO orders (order_id VALUES (1);");
        parser.Parse(reader, out var errors);
        Assert.NotEmpty(errors);
    }
}
