using Microsoft.Data.SqlClient;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Envio.Tests.Persistence;

/// <summary>
/// The SQL Server client reads its settings where Aspire.Microsoft.Data.SqlClient reads them, in the same order, so
/// that package can replace it without a configuration change.
/// </summary>
public sealed class SqlServerClientSettingsTests
{
    private const string Section = "Aspire:Microsoft:Data:SqlClient";
    private const string FromConnectionStrings = "Server=from-connection-strings;Database=enviodb";
    private const string FromSection = "Server=from-section;Database=enviodb";
    private const string FromNamedSection = "Server=from-named-section;Database=enviodb";

    [Fact]
    public void The_section_gives_the_settings()
    {
        var settings = Bound(new()
        {
            [$"{Section}:ConnectionString"] = FromSection,
            [$"{Section}:DisableHealthChecks"] = "true",
            [$"{Section}:DisableTracing"] = "true",
        });

        Assert.Equal(FromSection, settings.ConnectionString);
        Assert.True(settings.DisableHealthChecks);
        Assert.True(settings.DisableTracing);
    }

    [Fact]
    public void The_section_named_after_the_connection_overrides_the_section()
    {
        var settings = Bound(new()
        {
            [$"{Section}:ConnectionString"] = FromSection,
            [$"{Section}:DisableHealthChecks"] = "true",
            [$"{Section}:DisableTracing"] = "true",
            [$"{Section}:enviodb:ConnectionString"] = FromNamedSection,
            [$"{Section}:enviodb:DisableTracing"] = "false",
            [$"{Section}:other:DisableHealthChecks"] = "false", // another connection's: not read
        });

        Assert.Equal(FromNamedSection, settings.ConnectionString);
        Assert.True(settings.DisableHealthChecks);
        Assert.False(settings.DisableTracing);
    }

    [Fact]
    public void The_named_connection_string_wins_over_a_connection_string_in_either_section()
    {
        var settings = Bound(new()
        {
            [$"{Section}:ConnectionString"] = FromSection,
            [$"{Section}:enviodb:ConnectionString"] = FromNamedSection,
            ["ConnectionStrings:enviodb"] = FromConnectionStrings,
        });

        Assert.Equal(FromConnectionStrings, settings.ConnectionString);
    }

    [Fact]
    public void The_callers_delegate_has_the_last_word()
    {
        var builder = Builder(new()
        {
            ["ConnectionStrings:enviodb"] = FromConnectionStrings,
            [$"{Section}:enviodb:DisableHealthChecks"] = "false",
        });

        builder.AddSqlServerClient("enviodb", settings => settings.DisableHealthChecks = true);

        using var host = builder.Build();
        Assert.Empty(host.Services.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations);
    }

    [Fact]
    public void The_connection_and_health_check_use_the_connection_string_the_settings_end_with()
    {
        var builder = Builder(new()
        {
            [$"{Section}:enviodb:ConnectionString"] = FromNamedSection,
        });

        builder.AddSqlServerClient("enviodb");

        using var host = builder.Build();
        using var scope = host.Services.CreateScope();
        Assert.Equal(FromNamedSection, scope.ServiceProvider.GetRequiredService<SqlConnection>().ConnectionString);
        Assert.Equal("SqlServer_enviodb", Assert.Single(host.Services.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations).Name);
    }

    [Fact]
    public void Envios_former_section_is_no_longer_read()
    {
        var builder = Builder(new() { ["Envio:SqlServer:ConnectionString"] = FromSection });

        var refused = Assert.Throws<InvalidOperationException>(() => builder.AddSqlServerClient("enviodb"));
        Assert.Contains($"{Section}:ConnectionString", refused.Message, StringComparison.Ordinal);
    }

    private static MicrosoftDataSqlClientSettings Bound(Dictionary<string, string?> configuration)
    {
        MicrosoftDataSqlClientSettings? bound = null;
        Builder(configuration).AddSqlServerClient("enviodb", settings => bound = settings);
        return bound!;
    }

    private static HostApplicationBuilder Builder(Dictionary<string, string?> configuration)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(configuration);
        return builder;
    }
}
