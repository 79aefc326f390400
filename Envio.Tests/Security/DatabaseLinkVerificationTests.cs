using Envio.ConsumerService.Persistence;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Data.SqlClient;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace Envio.Tests.Security;

/// <summary>
/// Outside Development the consumer refuses, at start, a database link that does not verify the server's certificate;
/// in Development it accepts it and says so in the log.
/// </summary>
public sealed class DatabaseLinkVerificationTests
{
    private const string Postgres = "Host=db;Database=enviodb;Username=envio;Password=x";
    private const string SqlServer = "Server=db,1433;Database=enviodb;User ID=envio;Password=x";

    [Theory]
    [InlineData(Postgres + ";SSL Mode=Require")]
    [InlineData(Postgres + ";SSL Mode=Prefer")]
    [InlineData(Postgres)]
    // VerifyCA checks who issued the certificate, not whom it names: without a root certificate any publicly issued one.
    [InlineData(Postgres + ";SSL Mode=VerifyCA")]
    [InlineData(Postgres + ";SSL Mode=VerifyCA;Root Certificate=/etc/envio/tls/ca.crt")]
    [InlineData(SqlServer + ";Encrypt=True;TrustServerCertificate=true")]
    // The pin is not consulted with TrustServerCertificate=true outside Strict (see the live test below).
    [InlineData(SqlServer + ";Encrypt=True;TrustServerCertificate=true;ServerCertificate=/etc/envio/tls/sqlserver.crt")]
    [InlineData(SqlServer + ";Encrypt=False")]
    [InlineData(SqlServer + ";Encrypt=Optional;ServerCertificate=/etc/envio/tls/sqlserver.crt")]
    public void Outside_development_an_unverified_database_link_stops_the_consumer_at_start(string connectionString)
    {
        var builder = Consumer(Environments.Production, connectionString);

        var refused = Assert.Throws<InvalidOperationException>(() => builder.AddEnvioStore("enviodb"));
        Assert.Contains("certificate must be verified", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Password=x", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Postgres + ";SSL Mode=VerifyFull;Root Certificate=/etc/envio/tls/ca.crt")]
    [InlineData(Postgres + ";SSL Mode=VerifyFull")] // the machine's trust store, and the host name checked
    [InlineData(SqlServer + ";Encrypt=Strict")]
    [InlineData(SqlServer + ";Encrypt=Strict;ServerCertificate=/etc/envio/tls/sqlserver.crt")]
    [InlineData(SqlServer + ";Encrypt=Strict;TrustServerCertificate=true")] // Strict validates whatever TrustServerCertificate says
    [InlineData(SqlServer + ";Encrypt=True;ServerCertificate=/etc/envio/tls/sqlserver.crt")]
    [InlineData(SqlServer)] // SqlClient's defaults: Encrypt=True, TrustServerCertificate=false
    public void Outside_development_a_verified_database_link_is_accepted(string connectionString)
    {
        var builder = Consumer(Environments.Production, connectionString);

        builder.AddEnvioStore("enviodb");
    }

    [Theory]
    [InlineData(Postgres + ";SSL Mode=Require")]
    [InlineData(SqlServer + ";Encrypt=True;TrustServerCertificate=true")]
    public async Task In_development_an_unverified_link_is_accepted_and_the_log_says_so_at_start(string connectionString)
    {
        var builder = Consumer(Environments.Development, connectionString);
        builder.Logging.ClearProviders().AddFakeLogging();

        builder.AddEnvioStore("enviodb");
        builder.Configuration["Envio:Encryption:CurrentKeyId"] = "k1";
        builder.Configuration["Envio:Encryption:Keys:k1"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        builder.AddKeyRings(); // the store's, as in Program.cs
        using var host = builder.Build();
        // Everything the store registered for start-up, but the migrator (it would connect).
        foreach (var service in host.Services.GetServices<IHostedService>().Where(s => s is not DatabaseMigrator))
        {
            await service.StartAsync(TestContext.Current.CancellationToken);
        }

        var notice = Assert.Single(host.Services.GetFakeLogCollector().GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Contains("not verified", notice.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Password", notice.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Why TrustServerCertificate=true is refused outside Strict, on a real server: with it the client connects whatever
    /// certificate a ServerCertificate pin names (it is not consulted), while with TrustServerCertificate=false the
    /// same wrong pin is refused and the server's own certificate accepted.
    /// </summary>
    [Fact]
    public async Task With_trust_server_certificate_a_pin_is_not_consulted_and_without_it_a_wrong_pin_is_refused()
    {
        Assert.SkipWhen(TestSqlServer.Unavailable is not null, TestSqlServer.Unavailable ?? "");
        var ct = TestContext.Current.CancellationToken;
        var wrongPin = Path.Combine(Path.GetTempPath(), $"envio-wrong-pin-{Guid.NewGuid():N}.crt");
        using (var key = System.Security.Cryptography.RSA.Create(2048))
        {
            var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(
                "CN=localhost", key, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
            using var other = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            await File.WriteAllTextAsync(wrongPin, other.ExportCertificatePem(), ct);
        }
        try
        {
            var server = new SqlConnectionStringBuilder(TestSqlServer.ConnectionString) { Encrypt = SqlConnectionEncryptOption.Mandatory, Pooling = false };
            var bypass = new SqlConnectionStringBuilder(server.ConnectionString) { TrustServerCertificate = true, ServerCertificate = wrongPin };
            var pinned = new SqlConnectionStringBuilder(server.ConnectionString) { TrustServerCertificate = false, ServerCertificate = wrongPin };

            Assert.Equal(1, await ScalarAsync(bypass.ConnectionString, ct));
            var refused = await Assert.ThrowsAsync<SqlException>(() => ScalarAsync(pinned.ConnectionString, ct));
            Assert.Contains("certificate", refused.ToString(), StringComparison.OrdinalIgnoreCase);
            if (Environment.GetEnvironmentVariable(TestSqlServer.CertificateVariable) is { Length: > 0 } own)
            {
                Assert.Equal(1, await ScalarAsync(new SqlConnectionStringBuilder(pinned.ConnectionString) { ServerCertificate = own }.ConnectionString, ct));
            }
            Assert.NotNull(VerifiedDatabaseLink.Shortfall(StoreEngine.SqlServer, bypass.ConnectionString));
            Assert.Null(VerifiedDatabaseLink.Shortfall(StoreEngine.SqlServer, pinned.ConnectionString));
        }
        finally
        {
            File.Delete(wrongPin);
        }
    }

    private static async Task<int> ScalarAsync(string connectionString, CancellationToken ct)
    {
        await using var connection = new SqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new SqlCommand("SELECT 1", connection);
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    private static HostApplicationBuilder Consumer(string environment, string connectionString)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = environment });
        builder.Configuration["ConnectionStrings:enviodb"] = connectionString;
        return builder;
    }
}
