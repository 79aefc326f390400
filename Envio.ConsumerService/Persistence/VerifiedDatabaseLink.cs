using Microsoft.Data.SqlClient;
using Npgsql;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// Outside Development the link to the database is verified: PostgreSQL with <c>SSL Mode=VerifyFull</c> (not
/// <c>VerifyCA</c>, which checks who issued the certificate but not the host it names, so any certificate of that
/// authority, or without a root certificate any publicly issued one, would do); SQL Server encrypted (never <c>Encrypt=False</c>/<c>Optional</c>) and validated: with
/// <c>Encrypt=Strict</c>, which validates whatever <c>TrustServerCertificate</c> says, or with
/// <c>TrustServerCertificate=false</c> (and a <c>ServerCertificate=</c> pin where the certificate is not issued by an
/// authority the host trusts). With <c>Encrypt=True</c>, <c>TrustServerCertificate=true</c> skips validation and a
/// <c>ServerCertificate=</c> pin is not consulted at all. Development keeps its conveniences (a test server's
/// self-signed certificate), and says so in the log.
/// </summary>
public static partial class VerifiedDatabaseLink
{
    public static void RequireVerifiedDatabaseLink(
        this IHostApplicationBuilder builder, string connectionName, StoreEngine engine, string connectionString)
    {
        if (Shortfall(engine, connectionString) is not { } shortfall)
        {
            return;
        }
        if (!builder.Environment.IsDevelopment())
        {
            throw new InvalidOperationException(
                $"ConnectionStrings:{connectionName}: {shortfall} Outside Development the database's certificate must be verified " +
                "(PostgreSQL: SSL Mode=VerifyFull with Root Certificate=<CA file>; SQL Server: Encrypt=Strict, or Encrypt=True with " +
                "TrustServerCertificate=false, pinning the server's certificate with ServerCertificate=<its file> where no trusted authority issued it).");
        }
        builder.Services.AddHostedService(services => new Notice(
            services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(VerifiedDatabaseLink).FullName!), connectionName, shortfall));
    }

    /// <summary>What the connection string leaves unverified, or <c>null</c> when the server's certificate is checked.</summary>
    public static string? Shortfall(StoreEngine engine, string connectionString)
    {
        if (engine == StoreEngine.Postgres)
        {
            var postgres = new NpgsqlConnectionStringBuilder(connectionString);
            return postgres.SslMode switch
            {
                SslMode.VerifyFull => null,
                SslMode.VerifyCA => "SSL Mode=VerifyCA checks who issued the server's certificate but not that it names the host.",
                _ => $"SSL Mode={postgres.SslMode} does not verify the server's certificate.",
            };
        }
        var sqlServer = new SqlConnectionStringBuilder(connectionString);
        return sqlServer.Encrypt == SqlConnectionEncryptOption.Optional
                ? "Encrypt=False (Optional) sends everything after the login in clear."
            : sqlServer.TrustServerCertificate && sqlServer.Encrypt != SqlConnectionEncryptOption.Strict
                ? $"TrustServerCertificate=true with Encrypt={sqlServer.Encrypt} accepts any certificate (a ServerCertificate pin is not consulted then)."
            : null;
    }

    private sealed partial class Notice(ILogger logger, string connectionName, string shortfall) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            LogUnverified(logger, connectionName, shortfall);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(LogLevel.Warning,
            "Development: the database link '{ConnectionName}' is encrypted but not verified ({Shortfall}). Outside Development the consumer refuses to start with it.")]
        private static partial void LogUnverified(ILogger logger, string connectionName, string shortfall);
    }
}
