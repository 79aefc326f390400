using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.Messaging;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// The real API, hosted by the AppHost, given a broker address where nothing listens (a closed loopback port) and no
/// consumer: what a client sees when the API cannot even connect, and what its logs say. The shared stack, whose broker
/// is there, is where a client sends again what was refused.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class BrokerUnreachableTests(EnvioStack stack, BrokerUnreachableTests.UnreachableBroker unreachable)
    : IClassFixture<BrokerUnreachableTests.UnreachableBroker>
{
    /// <summary>One AppHost for the class: the API alone, pointed at ports held closed for as long as it runs.</summary>
    public sealed class UnreachableBroker : IAsyncLifetime
    {
        private readonly string _dataRoot = EnvioAppHost.NewDataRoot();
        private readonly ClosedLoopbackPort _broker = new();
        private readonly ClosedLoopbackPort _database = new();

        public DistributedApplication App { get; private set; } = null!;

        public HttpClient Api { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            var ct = TestContext.Current.CancellationToken;
            App = await EnvioAppHost.BuildAsync(_dataRoot,
                builder =>
                {
                    builder.Resources.Remove(builder.Resources.Single(r => r.Name == "consumer"));
                    // One connection attempt, not Aspire's five with back-off: each request and health check that
                    // meets the closed port gives up at once instead of after ~30 s.
                    builder.CreateResourceBuilder(builder.Resources.OfType<ProjectResource>().Single(r => r.Name == "api"))
                        .WithEnvironment("Aspire__RabbitMQ__Client__MaxConnectRetryCount", "0");
                }, ct,
                $"--ConnectionStrings:messaging=amqps://envio:unused@127.0.0.1:{_broker.Port}/envio",
                $"--ConnectionStrings:enviodb=Host=127.0.0.1;Port={_database.Port};Database=enviodb");
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(EnvioAppHost.StartTimeout);
            await App.StartAsync(timeout.Token);
            await App.ResourceNotifications.WaitForResourceAsync("api", KnownResourceStates.Running, timeout.Token);
            Api = App.CreateHttpClient("api");
            Api.DefaultRequestHeaders.Authorization = TestTokens.Bearer();
        }

        public async ValueTask DisposeAsync()
        {
            Api?.Dispose();
            if (App is not null)
            {
                await App.DisposeAsync();
            }
            _broker.Dispose();
            _database.Dispose();
            if (Directory.Exists(_dataRoot))
            {
                Directory.Delete(_dataRoot, recursive: true);
            }
        }
    }

    [Fact]
    public async Task An_order_posted_while_the_broker_cannot_be_reached_gets_503_with_retry_after_and_problem_details()
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(80_001);

        using var response = await unreachable.Api.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);

        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode}: {body}");
        Assert.NotNull(response.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(body);
        Assert.Equal(503, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Equal("The broker is unavailable.", problem.RootElement.GetProperty("title").GetString());
    }

    /// <summary>
    /// Invariant 18 for batches: the 503 names every id of the batch, those the API assigned included, so that the
    /// client's retry carries them; sent again (here to the shared stack, whose broker is reachable), each is stored
    /// once, and nothing else is.
    /// </summary>
    [Fact]
    public async Task A_refused_batch_names_every_id_including_those_assigned_and_sent_again_with_them_each_is_stored_once()
    {
        var ct = TestContext.Current.CancellationToken;
        // Given ids of another version than the API's (7), so that whose is whose shows.
        var given = Enumerable.Range(0, 3).Select(i => SampleOrders.Create(80_100 + i) with { OrderId = Guid.NewGuid() }).ToList();
        var withoutId = Enumerable.Range(0, 4).Select(i => SampleOrders.Create(80_200 + i) with { OrderId = Guid.Empty }).ToList();
        List<Envio.Contracts.Orders.Order> batch = [given[0], withoutId[0], withoutId[1], given[1], withoutId[2], given[2], withoutId[3]];

        using var refused = await unreachable.Api.PostAsJsonAsync("/api/orders/batch", batch, WireFormat.Options, ct);

        var body = await refused.Content.ReadAsStringAsync(ct);
        Assert.True(refused.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)refused.StatusCode}: {body}");
        Guid[] named;
        using (var problem = JsonDocument.Parse(body))
        {
            named = [.. problem.RootElement.GetProperty("orderIds").EnumerateArray().Select(e => e.GetGuid())];
        }
        // One id per order, in the batch's order: the given ones kept, the others new and distinct.
        Assert.Equal(batch.Count, named.Length);
        Assert.Equal(given.Select(o => o.OrderId), [named[0], named[3], named[5]]);
        List<Guid> assigned = [named[1], named[2], named[4], named[6]];
        Assert.All(assigned, id => Assert.Equal(7, id.Version));
        Assert.Equal(batch.Count, named.Distinct().Count());

        await stack.WaitUntilQueuesDrainedAsync(ct);
        var before = await StoredOrders.CountAllAsync(stack.Orders);
        var again = batch.Select((order, i) => order with { OrderId = named[i] }).ToList();
        // Twice: a retry whose first answer was lost too is absorbed the same way.
        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var accepted = await stack.Api.PostAsJsonAsync("/api/orders/batch", again, WireFormat.Options, ct);
            var text = await accepted.Content.ReadAsStringAsync(ct);
            Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, $"{(int)accepted.StatusCode}: {text}");
            using var ids = JsonDocument.Parse(text);
            Assert.Equal(named, ids.RootElement.GetProperty("orderIds").EnumerateArray().Select(e => e.GetGuid()));
        }

        Assert.Equal(named.Length, await StoredOrders.WaitForAsync(stack.Orders, named, TimeSpan.FromMinutes(3)));
        await stack.WaitUntilQueuesDrainedAsync(ct);
        Assert.Equal(named.Length, await StoredOrders.CountAsync(stack.Orders, "orders", named));
        Assert.Equal(before + named.Length, await StoredOrders.CountAllAsync(stack.Orders));
    }

    /// <summary>
    /// The control of <see cref="EnvioAppHost.ServiceErrors"/>: a failing health check is one error the API logs for
    /// certain (<c>fail: Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService</c>). Had the check
    /// stopped seeing the services' error lines, every test asserting "no service errors" would pass blind.
    /// </summary>
    [Fact]
    public async Task The_service_errors_check_finds_the_error_the_api_logs_when_its_broker_health_check_fails()
    {
        var ct = TestContext.Current.CancellationToken;
        using (var health = await unreachable.Api.GetAsync(new Uri("/health", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Equal("Unhealthy", await health.Content.ReadAsStringAsync(ct));
        }

        // The broker check's connection attempt retries before it gives up (~30 s, and a second /health waits on the
        // first's attempt), and the API's console output reaches the collector asynchronously: ask again and poll for
        // the line, do not sleep.
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (!unreachable.App.ServiceErrors().Any(IsFailedHealthCheck))
        {
            Assert.True(DateTime.UtcNow < deadline, "the check did not find the API's failed health check among its lines:\n" + string.Join("\n",
                unreachable.App.Services.GetFakeLogCollector().GetSnapshot().Where(log => log.Category?.EndsWith(".Resources.api", StringComparison.Ordinal) == true)
                    .TakeLast(40).Select(log => $"{log.Level}: {log.Message.Replace("\u001b", "\\e", StringComparison.Ordinal)}")));
            using var probe = CancellationTokenSource.CreateLinkedTokenSource(ct);
            probe.CancelAfter(TimeSpan.FromSeconds(5));
            try
            {
                using var again = await unreachable.Api.GetAsync(new Uri("/health", UriKind.Relative), probe.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // Still waiting on the broker: the line comes when the attempt gives up.
            }
            await Task.Delay(1_000, ct);
        }
    }

    private static bool IsFailedHealthCheck(string error) =>
        error.Contains(".Resources.api:", StringComparison.Ordinal)
        && error.Contains("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService", StringComparison.Ordinal);
}
