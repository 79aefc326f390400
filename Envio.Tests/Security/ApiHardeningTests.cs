using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Envio.Messaging;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;
using RabbitMQ.Client;

namespace Envio.Tests.Security;

/// <summary>
/// The API as deployed: outside Development, with <c>ASPNETCORE_FORWARDEDHEADERS_ENABLED=true</c> as Aspire's manifest
/// and compose set it, and a small cap on each client's requests in progress. Slow bodies cannot hold its memory or
/// starve other clients, forwarded headers from a sender that is not a configured proxy are not believed, and the
/// API's description is not served to anyone who asks.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class ApiHardeningTests(ApiHardeningTests.DeployedApi deployed) : IClassFixture<ApiHardeningTests.DeployedApi>
{
    private const int ConcurrentRequests = 25;
    private const int SlowRequests = 50;
    private const int MiB = 1024 * 1024;

    /// <summary>One stack for this class, started like a deployment.</summary>
    public sealed class DeployedApi : IAsyncLifetime
    {
        private readonly string _dataRoot = EnvioAppHost.NewDataRoot();

        public DistributedApplication App { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            App = await EnvioAppHost.StartAsync(_dataRoot, builder => builder
                .CreateResourceBuilder<ProjectResource>("api")
                .WithEnvironment("ASPNETCORE_ENVIRONMENT", "Production")
                .WithEnvironment("ASPNETCORE_FORWARDEDHEADERS_ENABLED", "true"),
                TestContext.Current.CancellationToken, $"--Envio:Api:RateLimit:ConcurrentRequests={ConcurrentRequests}");
        }

        public async ValueTask DisposeAsync()
        {
            await App.DisposeAsync();
            Directory.Delete(_dataRoot, recursive: true);
        }
    }

    [Fact(Timeout = 300_000)]
    public async Task Slow_bodies_declaring_the_batch_limit_hold_no_memory_beyond_what_arrived_and_other_clients_are_still_served()
    {
        var ct = TestContext.Current.CancellationToken;
        var api = await ResourceProcesses.ApiProcessAsync(deployed.App, ct);
        using var other = deployed.App.ApiClient(TestTokens.Create(client: "patient", scopes: [TestTokens.SendScope]));
        using (var warmUp = await other.PostAsJsonAsync("/api/orders", SampleOrders.Create(950_000), WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, warmUp.StatusCode);
        }
        var idle = ResourceProcesses.CommittedWithoutStacksMegabytes(api);
        Assert.True(idle > 0, $"the API's memory (/proc/{api}/status) could not be read: the check below would prove nothing");
        var idleResident = ResourceProcesses.ResidentMegabytes(api);

        var endpoint = deployed.App.GetEndpoint("api", "http");
        var token = TestTokens.Create(client: "slowloris", scopes: [TestTokens.SendScope]);
        var slow = new List<(TcpClient Client, NetworkStream Stream)>();
        try
        {
            for (var i = 0; i < SlowRequests; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync(endpoint.Host, endpoint.Port, ct);
                var stream = client.GetStream();
                slow.Add((client, stream));
                await stream.WriteAsync(Encoding.ASCII.GetBytes(
                    $"POST /api/orders/batch HTTP/1.1\r\nHost: {endpoint.Authority}\r\nAuthorization: Bearer {token}\r\n" +
                    $"Content-Type: application/json\r\nContent-Length: {Envio.ApiService.Security.ApiOptions.DefaultMaxBatchBodyBytes}\r\n\r\n["), ct);
            }

            // A few seconds of trickling (Kestrel's grace period is 5 s), watching the API's memory all along.
            var (peak, peakResident) = (idle, idleResident);
            var trickling = Task.Run(async () =>
            {
                for (var round = 0; round < 8; round++)
                {
                    foreach (var (_, stream) in slow)
                    {
                        try
                        {
                            await stream.WriteAsync(" "u8.ToArray(), ct);
                        }
                        catch (IOException)
                        {
                            // Answered (429) and closed by the API.
                        }
                    }
                    peak = Math.Max(peak, ResourceProcesses.CommittedWithoutStacksMegabytes(api));
                    peakResident = Math.Max(peakResident, ResourceProcesses.ResidentMegabytes(api));
                    await Task.Delay(400, ct);
                }
            }, ct);

            using (var served = await other.PostAsJsonAsync("/api/orders", SampleOrders.Create(950_001), WireFormat.Options, ct))
            {
                Assert.Equal(HttpStatusCode.Accepted, served.StatusCode);
            }
            await trickling;

            // The refusals were answered during the trickle; on a slow machine one may still be on its way: every
            // connection is read at once, for as long as a late answer could take (the admitted ones never answer).
            var firstLines = await Task.WhenAll(slow.Select(s => FirstLineAsync(s.Stream, TimeSpan.FromSeconds(10))));
            var refused = firstLines.Count(line => line.StartsWith("HTTP/1.1 429", StringComparison.Ordinal));
            Assert.True(peak - idle < 50 && peakResident - idleResident < 50,
                $"the API committed {peak - idle:0} MB more, thread stacks aside (from {idle:0} MB; resident: {peakResident - idleResident:0} MB more) for {SlowRequests} slow requests");
            Assert.Equal(SlowRequests - ConcurrentRequests, refused);
        }
        finally
        {
            foreach (var (client, _) in slow)
            {
                client.Dispose();
            }
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task A_forwarded_address_from_a_sender_that_is_not_a_configured_proxy_is_not_what_the_audit_records()
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(950_100);
        var envelope = new Envelope(order.OrderId, Orders.Type.WireType, Orders.Type.SchemaVersion, DateTimeOffset.UtcNow, "hardening-test");
        var properties = EncryptedBody.Properties(envelope);
        properties.Headers![FailureHeaders.Reason] = "The order is not valid: total: …";
        using var keys = await EncryptionKeysOf.AppAsync(deployed.App);
        await using (var broker = await deployed.App.ConnectToBrokerAsync(ct))
        await using (var channel = await broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct))
        {
            await channel.BasicPublishAsync(new TopologyOptions().ErrorExchange, "", mandatory: true, properties,
                EncryptedBody.Seal(keys, envelope, Orders.Type.Serialize(order)), ct);
        }

        using var admin = deployed.App.ApiClient();
        using var discard = new HttpRequestMessage(HttpMethod.Delete, new Uri($"/admin/errors/{order.OrderId}", UriKind.Relative));
        discard.Headers.Add("X-Forwarded-For", "203.0.113.7");
        using (var response = await admin.SendAsync(discard, ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        }

        var audit = await AuditLineAsync(order.OrderId, ct);
        Assert.DoesNotContain("203.0.113.7", audit, StringComparison.Ordinal);
        Assert.Matches(@"by envio-tests@(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)\b", audit);
    }

    [Theory]
    [InlineData("/openapi/v1.json")]
    [InlineData("/scalar/v1")]
    public async Task Outside_development_the_api_reference_is_not_served(string path)
    {
        using var anonymous = new HttpClient { BaseAddress = deployed.App.GetEndpoint("api", "http") };

        using var response = await anonymous.GetAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    private async Task<string> AuditLineAsync(Guid orderId, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var collector = deployed.App.Services.GetFakeLogCollector();
        while (true)
        {
            var line = collector.GetSnapshot().Select(log => log.Message)
                .FirstOrDefault(m => m.Contains($"message {orderId} (handle ", StringComparison.Ordinal) && m.Contains(") discarded from the error queue by ", StringComparison.Ordinal));
            if (line is not null)
            {
                return line;
            }
            await Task.Delay(100, timeout.Token);
        }
    }

    /// <summary>The first line the server sent on a connection, or "" when it sent nothing within <paramref name="wait"/>.</summary>
    private static async Task<string> FirstLineAsync(NetworkStream stream, TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(wait);
        var buffer = new byte[256];
        try
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, read).Split("\r\n")[0];
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            return "";
        }
    }
}
