using System.Net;
using System.Net.Http.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.Contracts.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;

namespace Envio.Tests.Security;

/// <summary>
/// Everything the stack logged (the AppHost, the api and consumer replicas, the broker and the database) holds no
/// password, no encryption key, no bearer token or its signing key, and no personal data, after orders carrying a
/// canary went through it, accepted and refused.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class SecretsInLogsTests(EnvioStack stack)
{
    [Fact]
    public async Task No_secret_token_or_canary_appears_in_any_log_of_the_stack()
    {
        var ct = TestContext.Current.CancellationToken;
        var canary = $"canary{Guid.NewGuid():N}";
        var accepted = SampleOrders.Create(64_001) with
        {
            Customer = new Customer { Name = "Log Canary", Email = $"{canary}@example.com", Document = canary },
        };
        // Refused by validation: the canary is in the body a problem detail describes.
        var refused = SampleOrders.Create(64_002) with
        {
            Currency = "XXXX",
            Customer = new Customer { Name = canary, Email = $"not-an-email-{canary}", Document = canary },
        };

        using (var response = await stack.Api.PostAsJsonAsync("/api/orders", accepted, WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }
        using (var response = await stack.Api.PostAsJsonAsync("/api/orders", refused, WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
        using (var anonymous = new HttpClient { BaseAddress = stack.Api.BaseAddress })
        using (var forged = new HttpRequestMessage(HttpMethod.Post, "/api/orders") { Content = JsonContent.Create(accepted, options: WireFormat.Options) })
        {
            forged.Headers.Authorization = new("Bearer", TestTokens.Create(key: new Microsoft.IdentityModel.Tokens.SymmetricSecurityKey(new byte[32])));
            using var response = await anonymous.SendAsync(forged, ct);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode); // a rejected token is the one most likely logged
        }
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [accepted.OrderId], TimeSpan.FromSeconds(60)));
        await Task.Delay(TimeSpan.FromSeconds(2), ct); // the services' console output reaches the collector asynchronously

        var secrets = new Dictionary<string, string>
        {
            ["canary"] = canary,
            ["bearer token"] = stack.Api.DefaultRequestHeaders.Authorization!.Parameter!,
            ["token signing key"] = Convert.ToBase64String(TestTokens.SigningKey.Key),
        };
        foreach (var parameter in stack.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<ParameterResource>().Where(p => p.Secret))
        {
            secrets[parameter.Name] = (await parameter.GetValueAsync(ct))!;
        }
        Assert.Contains(secrets.Keys, name => name.StartsWith("encryption-key-", StringComparison.Ordinal));
        Assert.Contains("messaging-password", secrets.Keys);

        var logs = stack.App.Services.GetFakeLogCollector().GetSnapshot();
        Assert.Contains(logs, log => log.Category?.EndsWith(".Resources.api", StringComparison.Ordinal) == true); // the search sees the services
        foreach (var log in logs)
        {
            var text = $"{log.Message} {log.Exception}";
            foreach (var (what, secret) in secrets)
            {
                Assert.False(text.Contains(secret, StringComparison.Ordinal), $"{log.Category} logged the {what}: {log.Message}");
            }
        }
    }
}
