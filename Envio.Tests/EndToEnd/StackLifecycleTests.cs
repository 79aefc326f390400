using System.Net;
using Envio.AppHost.Hosting;
using Envio.Tests.Support;

namespace Envio.Tests.EndToEnd;

/// <summary>The whole stack as a developer gets it: started by the AppHost, healthy, and gone without a trace.</summary>
[Collection(AppHostTests.Name)]
public sealed class StackLifecycleTests
{
    [Fact]
    public async Task Stack_starts_healthy_and_leaves_no_process_or_data_behind()
    {
        var ct = TestContext.Current.CancellationToken;
        var dataRoot = EnvioAppHost.NewDataRoot();
        string runDirectory;

        await using (var app = await EnvioAppHost.StartAsync(dataRoot, ct))
        {
            foreach (var service in new[] { "api", "consumer" })
            {
                using var http = app.CreateHttpClient(service);
                using var health = await http.GetAsync(new Uri("/health", UriKind.Relative), ct);
                Assert.Equal(HttpStatusCode.OK, health.StatusCode);
                Assert.Equal("Healthy", await health.Content.ReadAsStringAsync(ct));
            }

            runDirectory = Assert.Single(Directory.GetDirectories(dataRoot, "run-*"));
            var running = LocalProcessWorkspace.ProcessesOf(runDirectory);
            Assert.True(running.Count >= 3, $"expected epmd, the broker and postgres under {runDirectory}; found {running.Count}");

            app.AssertNoServiceErrors();
        }

        Assert.Empty(LocalProcessWorkspace.ProcessesOf(runDirectory));
        Assert.False(Directory.Exists(runDirectory), $"{runDirectory} was left behind");
        Directory.Delete(dataRoot, recursive: true);
    }
}
