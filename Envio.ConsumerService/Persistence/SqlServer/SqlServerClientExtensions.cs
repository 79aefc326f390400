using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Settings of the SQL Server client: the names and meaning of Aspire.Microsoft.Data.SqlClient's
/// <c>MicrosoftDataSqlClientSettings</c>, so that configuration written for one works for the other.
/// </summary>
public sealed class MicrosoftDataSqlClientSettings
{
    public string? ConnectionString { get; set; }

    public bool DisableHealthChecks { get; set; }

    public bool DisableTracing { get; set; }
}

/// <summary>
/// SQL Server client wiring in the shape of Aspire's own integration (Aspire.Microsoft.Data.SqlClient is not served
/// here): the same method, settings class and configuration sections, so that package can replace this file without
/// a configuration change. One call registers the connection, its health check and its tracing.
/// </summary>
public static class SqlServerClientExtensions
{
    /// <summary>Aspire.Microsoft.Data.SqlClient's section; <c>{section}:{connectionName}</c> overrides it per connection.</summary>
    public const string DefaultConfigSectionName = "Aspire:Microsoft:Data:SqlClient";

    /// <summary>
    /// Settings, lowest precedence first: <c>Aspire:Microsoft:Data:SqlClient</c>, then
    /// <c>Aspire:Microsoft:Data:SqlClient:{connectionName}</c>, then the connection string
    /// <c>ConnectionStrings:{connectionName}</c> (over a <c>ConnectionString</c> in either section), then
    /// <paramref name="configureSettings"/>.
    /// </summary>
    public static void AddSqlServerClient(
        this IHostApplicationBuilder builder,
        string connectionName,
        Action<MicrosoftDataSqlClientSettings>? configureSettings = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionName);

        var settings = new MicrosoftDataSqlClientSettings();
        var section = builder.Configuration.GetSection(DefaultConfigSectionName);
        section.Bind(settings);
        section.GetSection(connectionName).Bind(settings);
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

        // Unlike Aspire's, which checks at the first SqlConnection: fail at start-up, not at the first query, when the
        // connection string is malformed or sends data in clear.
        if (new SqlConnectionStringBuilder(settings.ConnectionString).Encrypt == SqlConnectionEncryptOption.Optional)
        {
            throw new InvalidOperationException(
                $"The SQL Server connection string '{connectionName}' turns encryption off (Encrypt=False/Optional). " +
                "Use Encrypt=Strict (or Encrypt=True with a certificate the client trusts).");
        }

        var connectionStringInUse = settings.ConnectionString;
        builder.Services.AddScoped(_ => new SqlConnection(connectionStringInUse));

        if (!settings.DisableHealthChecks)
        {
            builder.Services.AddHealthChecks().AddSqlServer(connectionStringInUse, name: $"SqlServer_{connectionName}");
        }

        if (!settings.DisableTracing)
        {
            builder.Services.AddOpenTelemetry().WithTracing(tracing => tracing.AddSqlClientInstrumentation());
        }
    }
}
