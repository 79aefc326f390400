using Envio.ConsumerService.Persistence;
using Envio.Contracts.Security;
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
    [InlineData(SqlServer + ";Encrypt=Strict;TrustServerCertificate=true")]
    [InlineData(SqlServer + ";Encrypt=True;TrustServerCertificate=true")]
    public void Outside_development_an_unverified_database_link_stops_the_consumer_at_start(string connectionString)
    {
        var builder = Consumer(Environments.Production, connectionString);

        var refused = Assert.Throws<InvalidOperationException>(() => builder.AddEnvioStore("enviodb"));
        Assert.Contains("certificate must be verified", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Password=x", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Postgres + ";SSL Mode=VerifyFull;Root Certificate=/etc/envio/tls/ca.crt")]
    [InlineData(Postgres + ";SSL Mode=VerifyCA;Root Certificate=/etc/envio/tls/ca.crt")]
    [InlineData(SqlServer + ";Encrypt=Strict")]
    [InlineData(SqlServer + ";Encrypt=Strict;ServerCertificate=/etc/envio/tls/sqlserver.crt")]
    [InlineData(SqlServer + ";Encrypt=True;TrustServerCertificate=true;ServerCertificate=/etc/envio/tls/sqlserver.crt")]
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
        builder.Services.AddSingleton(KeyRing.FromConfiguration(builder.Configuration)); // the store's, as in Program.cs
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

    private static HostApplicationBuilder Consumer(string environment, string connectionString)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = environment });
        builder.Configuration["ConnectionStrings:enviodb"] = connectionString;
        return builder;
    }
}
