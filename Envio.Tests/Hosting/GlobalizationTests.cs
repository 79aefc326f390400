using System.Text.Json.Nodes;

namespace Envio.Tests.Hosting;

/// <summary>
/// Microsoft.Data.SqlClient cannot open any connection in a process running in globalization-invariant mode
/// ("Globalization Invariant Mode is not supported"), whatever the server: a consumer built that way crash-loops
/// on every SQL Server. Every application that carries SqlClient must be built with invariant mode off.
/// </summary>
public sealed class GlobalizationTests
{
    /// <summary>The applications built beside the tests (their runtimeconfig.json) whose dependencies include SqlClient.</summary>
    public static TheoryData<string> SqlClientApplications() =>
    [
        .. Directory.EnumerateFiles(AppContext.BaseDirectory, "*.runtimeconfig.json")
            .Select(path => Path.GetFileName(path)[..^".runtimeconfig.json".Length])
            .Where(app => File.Exists(DepsOf(app)) && File.ReadAllText(DepsOf(app)).Contains("\"Microsoft.Data.SqlClient/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal),
    ];

    [Theory]
    [MemberData(nameof(SqlClientApplications))]
    public void An_application_using_sql_client_is_not_built_in_invariant_mode(string application)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, $"{application}.runtimeconfig.json")))!;
        var invariant = config["runtimeOptions"]?["configProperties"]?["System.Globalization.Invariant"];
        Assert.True(invariant is null || !invariant.GetValue<bool>(),
            $"{application} is built with InvariantGlobalization=true: SqlClient cannot open a connection in it.");
    }

    [Fact]
    public void The_consumer_and_the_app_host_are_among_them_and_the_api_is_not()
    {
        var applications = SqlClientApplications().Select(row => row.Data).ToHashSet();
        Assert.Superset(new HashSet<string> { "Envio.AppHost", "Envio.ConsumerService", "Envio.Tests" }, applications);
        // The API has no database: SQL Server's client is wired where it is used (the consumer), not in ServiceDefaults.
        Assert.DoesNotContain("Envio.ApiService", applications);
    }

    private static string DepsOf(string application) => Path.Combine(AppContext.BaseDirectory, $"{application}.deps.json");
}
