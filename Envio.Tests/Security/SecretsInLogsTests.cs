using System.Net;
using System.Net.Http.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.Messaging;
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
        var challengesBefore = Challenges();
        var forgedToken = TestTokens.Create(key: new Microsoft.IdentityModel.Tokens.SymmetricSecurityKey(new byte[32]));
        using (var anonymous = new HttpClient { BaseAddress = stack.Api.BaseAddress })
        using (var forged = new HttpRequestMessage(HttpMethod.Post, "/api/orders") { Content = JsonContent.Create(accepted, options: WireFormat.Options) })
        {
            forged.Headers.Authorization = new("Bearer", forgedToken);
            using var response = await anonymous.SendAsync(forged, ct);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode); // a rejected token is the one most likely logged
        }
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [accepted.OrderId], TimeSpan.FromSeconds(60)));
        // The API's console output reaches the collector asynchronously, in order: its line for this challenge (the
        // stack logs authentication at Information) comes after everything it logged about the three requests.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Challenges() == challengesBefore)
        {
            Assert.True(DateTime.UtcNow < deadline, "the API's line for the forged token's challenge never reached the collector");
            await Task.Delay(100, ct);
        }

        var secrets = new Dictionary<string, string>
        {
            ["canary"] = canary,
            ["bearer token"] = stack.Api.DefaultRequestHeaders.Authorization!.Parameter!,
            ["forged bearer token"] = forgedToken,
            ["token signing key"] = Convert.ToBase64String(TestTokens.SigningKey.Key),
        };
        foreach (var parameter in stack.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<ParameterResource>().Where(p => p.Secret))
        {
            secrets[parameter.Name] = (await parameter.GetValueAsync(ct))!;
        }
        Assert.Contains(secrets.Keys, name => name.StartsWith("encryption-key-", StringComparison.Ordinal));
        Assert.Contains("messaging-password", secrets.Keys);

        var logs = stack.App.Services.GetFakeLogCollector().GetSnapshot();
        // The search sees every process of the stack: the AppHost, the API, the consumers, the broker, the database.
        Assert.Contains(logs, log => log.Category?.StartsWith("Envio.AppHost", StringComparison.Ordinal) == true);
        // (The consumer's two replicas log under one category, the resource's.)
        foreach (var resource in new[] { "api", "consumer", "messaging", "postgres" })
        {
            Assert.True(logs.Any(log => log.Category?.EndsWith(".Resources." + resource, StringComparison.Ordinal) == true),
                $"nothing of '{resource}' was collected: the search would be blind to it");
        }
        foreach (var log in logs)
        {
            var text = $"{log.Message} {log.Exception}";
            foreach (var (what, secret) in secrets)
            {
                Assert.False(text.Contains(secret, StringComparison.Ordinal), $"{log.Category} logged the {what}: {log.Message}");
            }
        }
    }

    /// <summary>The API's "AuthenticationScheme: Bearer was challenged." lines so far.</summary>
    private int Challenges() => stack.App.Services.GetFakeLogCollector().GetSnapshot()
        .Count(log => log.Category?.EndsWith(".Resources.api", StringComparison.Ordinal) == true
            && log.Message.Contains("Bearer was challenged", StringComparison.Ordinal));
}
