using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.Hosting;

/// <summary>Settings of the SQL Server client, bound from <c>Envio:SqlServer</c> and the named connection string.</summary>
public sealed class SqlServerClientSettings
{
    public string? ConnectionString { get; set; }

    public bool DisableHealthChecks { get; set; }

    public bool DisableTracing { get; set; }
}

/// <summary>
/// SQL Server client wiring in the shape of Aspire's own integrations (Aspire.Microsoft.Data.SqlClient is not
/// served here): one call registers the connection, its health check and its tracing.
/// </summary>
public static class SqlServerClientExtensions
{
    private const string DefaultConfigSectionName = "Envio:SqlServer";

    public static SqlServerClientSettings AddSqlServerClient(
        this IHostApplicationBuilder builder,
        string connectionName,
        Action<SqlServerClientSettings>? configureSettings = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionName);

        var settings = new SqlServerClientSettings();
        builder.Configuration.GetSection(DefaultConfigSectionName).Bind(settings);
        if (builder.Configuration.GetConnectionString(connectionName) is { Length: > 0 } connectionString)
        {
            settings.ConnectionString = connectionString;
        }
        configureSettings?.Invoke(settings);

        if (string.IsNullOrWhiteSpace(settings.ConnectionString))
        {
            throw new InvalidOperationException(
                $"SQL Server client could not be configured: no connection string named '{connectionName}' " +
                $"(ConnectionStrings:{connectionName}) and no '{DefaultConfigSectionName}:ConnectionString'.");
        }

        // Fail at start-up, not at the first query, when the connection string is malformed or sends data in clear.
        if (new SqlConnectionStringBuilder(settings.ConnectionString).Encrypt == SqlConnectionEncryptOption.Optional)
        {
            throw new InvalidOperationException(
                $"The SQL Server connection string '{connectionName}' turns encryption off (Encrypt=False/Optional). " +
                "Use Encrypt=Strict (or Encrypt=True with a certificate the client trusts).");
        }

        builder.Services.AddSingleton(settings);
        builder.Services.AddScoped(_ => new SqlConnection(settings.ConnectionString));

        if (!settings.DisableHealthChecks)
        {
            builder.Services.AddHealthChecks().AddSqlServer(settings.ConnectionString, name: $"SqlServer_{connectionName}");
        }

        if (!settings.DisableTracing)
        {
            builder.Services.AddOpenTelemetry().WithTracing(tracing => tracing.AddSqlClientInstrumentation());
        }

        return settings;
    }
}
