using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>aspire-manifest.json is what ops deploy: it must be what the AppHost generates today.</summary>
public sealed class ManifestTests
{
    [Fact]
    public async Task Committed_manifest_equals_a_fresh_generation_in_containers_mode()
    {
        var ct = TestContext.Current.CancellationToken;
        var committed = Path.Combine(Repository.Root, "aspire-manifest.json");
        // Beside the committed one: project paths in a manifest are relative to its folder.
        var fresh = Path.Combine(Repository.Root, $"aspire-manifest.{Guid.NewGuid():N}.tmp.json");
        try
        {
            await Repository.GenerateManifestAsync(fresh, ct);

            var expected = await File.ReadAllTextAsync(fresh, ct);
            var actual = await File.ReadAllTextAsync(committed, ct);
            Assert.True(expected.ReplaceLineEndings() == actual.ReplaceLineEndings(),
                "aspire-manifest.json is stale. Regenerate it with: dotnet run --project Envio.AppHost -- " +
                "--publisher manifest --output-path ../aspire-manifest.json --Envio:Hosting=containers");
        }
        finally
        {
            File.Delete(fresh);
        }
    }

    [Fact]
    public async Task Manifest_deploys_rabbitmq_and_sql_server_containers_the_two_services_and_secret_parameters()
    {
        var ct = TestContext.Current.CancellationToken;
        using var manifest = System.Text.Json.JsonDocument.Parse(
            await File.ReadAllTextAsync(Path.Combine(Repository.Root, "aspire-manifest.json"), ct));
        var resources = manifest.RootElement.GetProperty("resources");

        string TypeOf(string name) => resources.GetProperty(name).GetProperty("type").GetString()!;

        Assert.Equal("container.v0", TypeOf("messaging"));
        Assert.StartsWith("docker.io/library/rabbitmq:", resources.GetProperty("messaging").GetProperty("image").GetString());
        Assert.Equal("container.v0", TypeOf("sqlserver"));
        Assert.StartsWith("mcr.microsoft.com/mssql/server:", resources.GetProperty("sqlserver").GetProperty("image").GetString());
        Assert.Equal("project.v0", TypeOf("api"));
        Assert.Equal("project.v0", TypeOf("consumer"));
        foreach (var secret in new[] { "messaging-password", "sqlserver-password", "enviodb-password" })
        {
            Assert.Equal("parameter.v0", TypeOf(secret));
            Assert.True(resources.GetProperty(secret).GetProperty("inputs").GetProperty("value").GetProperty("secret").GetBoolean());
        }
        Assert.DoesNotContain(resources.EnumerateObject(), r => r.Value.GetProperty("type").GetString() == "executable.v0");
        Assert.Equal("{enviodb.connectionString}",
            resources.GetProperty("consumer").GetProperty("env").GetProperty("ConnectionStrings__enviodb").GetString());
    }
}
