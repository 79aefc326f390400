using Microsoft.Data.SqlClient;
using Npgsql;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// Outside Development the link to the database is verified: PostgreSQL with <c>SSL Mode=VerifyFull</c> or
/// <c>VerifyCA</c>, SQL Server without <c>TrustServerCertificate=true</c> unless <c>ServerCertificate=</c> pins the
/// certificate. Development keeps its conveniences (a test server's self-signed certificate), and says so in the log.
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
                "(PostgreSQL: SSL Mode=VerifyFull with Root Certificate=<CA file>; SQL Server: Encrypt=Strict, and " +
                "TrustServerCertificate=true only with ServerCertificate=<the server's certificate file>).");
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
            return postgres.SslMode is SslMode.VerifyFull or SslMode.VerifyCA
                ? null
                : $"SSL Mode={postgres.SslMode} does not verify the server's certificate.";
        }
        var sqlServer = new SqlConnectionStringBuilder(connectionString);
        return sqlServer.TrustServerCertificate && string.IsNullOrEmpty(sqlServer.ServerCertificate)
            ? "TrustServerCertificate=true accepts any certificate and no ServerCertificate pins it."
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
