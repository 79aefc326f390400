using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;

namespace Envio.Tests.Deployment;

/// <summary>
/// The AppHost's deployed model (what aspire-manifest.json is generated from) says what compose does: the consumer
/// waits for the login bootstrap to complete, and the API's one external endpoint is the plain HTTP one compose serves.
/// </summary>
public sealed class AppHostModelTests
{
    [Fact]
    public async Task Deployed_the_consumer_waits_for_the_login_bootstrap_and_the_api_serves_one_external_http_endpoint()
    {
        var ct = TestContext.Current.CancellationToken;
        var output = Path.Combine(Path.GetTempPath(), $"envio-model-{Guid.NewGuid():N}.json");
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Envio_AppHost>(
            ["--publisher", "manifest", "--output-path", output, "--Envio:Hosting=containers"], ct);

        var bootstrap = builder.Resources.Single(r => r.Name == "sqlserver-bootstrap");
        var consumer = builder.Resources.Single(r => r.Name == "consumer");
        Assert.Contains(consumer.Annotations.OfType<WaitAnnotation>(), w => w.Resource == bootstrap && w.WaitType == WaitType.WaitForCompletion);

        var api = builder.Resources.Single(r => r.Name == "api");
        var endpoint = Assert.Single(api.Annotations.OfType<EndpointAnnotation>(), e => e.IsExternal);
        Assert.Equal("http", endpoint.UriScheme);
        Assert.Equal(8080, endpoint.TargetPort);
        Assert.DoesNotContain(api.Annotations.OfType<EndpointAnnotation>(), e => e.UriScheme == "https");
    }
}
