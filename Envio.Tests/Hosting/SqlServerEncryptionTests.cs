using System.Text.Json;
using System.Text.RegularExpressions;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.AppHost.Hosting;
using Envio.ConsumerService.Persistence;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Hosting;

namespace Envio.Tests.Hosting;

/// <summary>SQL Server connections are encrypted, and in what is deployed the server's certificate is verified.</summary>
public sealed partial class SqlServerEncryptionTests
{
    [Fact]
    public void The_deployed_connection_string_is_encrypted_and_trusts_no_certificate_blindly()
    {
        var connectionString = Resolve(Server(verifyServerCertificate: true).ConnectionStringExpression.ValueExpression);

        // Mandatory, not Strict: SQL Server 2022 on Linux refuses TDS 8 (error 17821); the pin is checked instead.
        var parsed = new SqlConnectionStringBuilder(connectionString);
        Assert.Equal(SqlConnectionEncryptOption.Mandatory, parsed.Encrypt);
        Assert.False(parsed.TrustServerCertificate);
        Assert.Null(VerifiedDatabaseLink.Shortfall(StoreEngine.SqlServer, connectionString));
    }

    [Fact]
    public void The_development_container_is_still_encrypted()
    {
        var parsed = new SqlConnectionStringBuilder(Resolve(Server(verifyServerCertificate: false).ConnectionStringExpression.ValueExpression));

        Assert.Equal(SqlConnectionEncryptOption.Mandatory, parsed.Encrypt);
    }

    [Fact]
    public async Task The_committed_manifest_deploys_sql_server_with_verified_encryption()
    {
        using var manifest = JsonDocument.Parse(
            await File.ReadAllTextAsync(Path.Combine(Repository.Root, "aspire-manifest.json"), TestContext.Current.CancellationToken));
        var expression = manifest.RootElement.GetProperty("resources").GetProperty("sqlserver").GetProperty("connectionString").GetString()!;

        var parsed = new SqlConnectionStringBuilder(Resolve(expression));
        Assert.Equal(SqlConnectionEncryptOption.Mandatory, parsed.Encrypt);
        Assert.False(parsed.TrustServerCertificate);
    }

    /// <summary>
    /// What the consumer gets in the manifest: its own login, not sa, and the server's certificate pinned to the file
    /// the deployment mounts, the one SQL Server presents (mssql.conf).
    /// </summary>
    [Fact]
    public async Task The_committed_manifest_gives_the_consumer_its_own_login_and_pins_the_servers_certificate()
    {
        using var manifest = JsonDocument.Parse(
            await File.ReadAllTextAsync(Path.Combine(Repository.Root, "aspire-manifest.json"), TestContext.Current.CancellationToken));
        var resources = manifest.RootElement.GetProperty("resources");
        var expression = resources.GetProperty("enviodb").GetProperty("connectionString").GetString()!;
        var owner = resources.GetProperty("enviodb-migrations").GetProperty("connectionString").GetString()!;

        Assert.Equal(SqlServerLogins.ConsumerLogin, new SqlConnectionStringBuilder(Resolve(owner)).UserID); // migrates as the owner
        var parsed = new SqlConnectionStringBuilder(Resolve(expression));
        Assert.Equal(SqlServerLogins.WriterLogin, parsed.UserID); // writes as the runtime login
        Assert.Equal("enviodb", parsed.InitialCatalog);
        Assert.Equal(SqlConnectionEncryptOption.Mandatory, parsed.Encrypt);
        Assert.False(parsed.TrustServerCertificate);
        Assert.Equal("/etc/envio/tls/sqlserver.crt", parsed.ServerCertificate);
        var configuration = await File.ReadAllLinesAsync(
            Path.Combine(Repository.Root, "deploy", "compose", "sqlserver", "mssql.conf"), TestContext.Current.CancellationToken);
        Assert.Contains("tlscert = " + parsed.ServerCertificate, configuration);
    }

    [Fact]
    public void The_development_containers_database_is_reached_with_its_own_login()
    {
        var server = Server(verifyServerCertificate: false);
        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions { Args = [], DisableDashboard = true });
        var password = builder.AddParameter("enviodb-password", "not-a-secret", secret: true);
        var writerPassword = builder.AddParameter("enviodb-writer-password", "not-a-secret-either", secret: true);
        var database = new SqlServerDatabaseResource("enviodb", "enviodb", SqlServerLogins.ConsumerLogin, password.Resource, writerPassword.Resource, server);

        Assert.Equal(SqlServerLogins.ConsumerLogin, new SqlConnectionStringBuilder(Resolve(database.Owner.ConnectionStringExpression.ValueExpression)).UserID);
        var parsed = new SqlConnectionStringBuilder(Resolve(database.ConnectionStringExpression.ValueExpression));
        Assert.Equal(SqlServerLogins.WriterLogin, parsed.UserID); // the consumer writes as the writer, migrates as the owner
        Assert.Equal(SqlConnectionEncryptOption.Mandatory, parsed.Encrypt);
    }

    [Fact]
    public void The_services_refuse_a_connection_string_that_turns_encryption_off()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration["ConnectionStrings:enviodb"] = "Server=db;Database=enviodb;User ID=envio;Password=x;Encrypt=False";

        var refused = Assert.Throws<InvalidOperationException>(() => builder.AddSqlServerClient("enviodb"));
        Assert.Contains("Encrypt=Strict", refused.Message, StringComparison.Ordinal);
    }

    private static SqlServerServerResource Server(bool verifyServerCertificate)
    {
        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions { Args = [], DisableDashboard = true });
        var password = builder.AddParameter("sqlserver-password", "not-a-secret", secret: true);
        return new SqlServerServerResource("sqlserver", password.Resource, verifyServerCertificate);
    }

    /// <summary>Manifest placeholders (<c>{sqlserver.bindings.tcp.port}</c>) replaced by sample values, for parsing.</summary>
    private static string Resolve(string expression) => Placeholder().Replace(expression, m => m.Value.Contains("port", StringComparison.Ordinal) ? "1433" : "x");

    [GeneratedRegex(@"\{[^}]+\}")]
    private static partial Regex Placeholder();
}
