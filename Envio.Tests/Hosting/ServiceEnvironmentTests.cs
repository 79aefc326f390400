using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>
/// The services run in the AppHost's environment: their launch profiles say Development, and a Development API shows
/// its reference, trusts the development token issuer and accepts plain links, so an AppHost run as Production on a
/// shared server must not start its services as Development.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class ServiceEnvironmentTests
{
    [Theory]
    [InlineData("Production")]
    [InlineData("Staging")]
    [InlineData("Development")]
    public async Task Each_service_runs_in_the_AppHosts_environment(string environment)
    {
        var ct = TestContext.Current.CancellationToken;
        var dataRoot = EnvioAppHost.NewDataRoot();
        try
        {
            await using var app = await EnvioAppHost.BuildAsync(dataRoot, _ => { }, ct, $"--environment={environment}");
            foreach (var service in new[] { "api", "consumer" })
            {
                var settings = (await ResourceSettings.OfAsync(app, service, ct)).ToDictionary(s => s.Key, s => s.Value);
                Assert.Equal(environment, settings["ASPNETCORE_ENVIRONMENT"]);
            }
        }
        finally
        {
            if (Directory.Exists(dataRoot))
            {
                Directory.Delete(dataRoot, recursive: true);
            }
        }
    }
}
