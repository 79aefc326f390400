using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using Microsoft.IdentityModel.Tokens;
using static Envio.Tests.Security.HostileInputChecks;

namespace Envio.Tests.Security;

/// <summary>
/// Only a signed, current token from the trusted issuer, for this API, with the right scope gets through: 401 for
/// no token or a bad one, 403 for a good one without the scope, both as problem details, and nothing published.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class AuthTests(EnvioStack stack)
{
    public static TheoryData<string> RefusedTokens() =>
        ["none", "garbage", "expired", "expired past the clock skew", "valid only after the clock skew", "not an access token",
            "wrong audience", "wrong issuer", "wrong signing key", "alg none"];

    private static string? TokenFor(string kind) => kind switch
    {
        "none" => null,
        "garbage" => "not-a-jwt",
        "expired" => TestTokens.Create(scopes: [TestTokens.SendScope], expires: DateTime.UtcNow.AddMinutes(-10)),
        // The API allows a minute of clock skew either way, and no more.
        "expired past the clock skew" => TestTokens.Create(scopes: [TestTokens.SendScope], expires: DateTime.UtcNow.AddSeconds(-90)),
        "valid only after the clock skew" => TestTokens.Create(scopes: [TestTokens.SendScope], notBefore: DateTime.UtcNow.AddSeconds(90)),
        // Signed by the trusted issuer with the trusted key, but a logout token, not an access token.
        "not an access token" => TestTokens.Create(scopes: [TestTokens.SendScope], type: "logout+jwt"),
        "wrong audience" => TestTokens.Create(scopes: [TestTokens.SendScope], audience: "some-other-api"),
        "wrong issuer" => TestTokens.Create(scopes: [TestTokens.SendScope], issuer: "https://evil.example.com"),
        "wrong signing key" => TestTokens.Create(scopes: [TestTokens.SendScope], key: new SymmetricSecurityKey(new byte[32])),
        "alg none" => TestTokens.UnsignedToken([TestTokens.SendScope, TestTokens.AdminScope]),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory]
    [MemberData(nameof(RefusedTokens))]
    public async Task A_missing_or_invalid_token_gets_401_problem_details_and_nothing_is_published(string kind)
    {
        var ct = TestContext.Current.CancellationToken;
        using var client = Client(stack, TokenFor(kind));
        var order = SampleOrders.Create(610_000 + kind.Length);
        var before = await StackTotals.TakeAsync(stack, ct);

        using var response = await client.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);
        using var batch = await client.PostAsJsonAsync("/api/orders/batch", new List<Order> { order }, WireFormat.Options, ct);
        using var admin = await client.GetAsync(new Uri("/admin/errors", UriKind.Relative), ct);

        await AssertProblemAsync(response, HttpStatusCode.Unauthorized, ct);
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
        await AssertProblemAsync(batch, HttpStatusCode.Unauthorized, ct);
        await AssertProblemAsync(admin, HttpStatusCode.Unauthorized, ct);
        await AssertNothingPublishedAsync(stack, before, [order.OrderId], ct);
    }

    [Theory]
    [InlineData("expired 30 s ago")]
    [InlineData("valid from 30 s from now")]
    [InlineData("typ at+jwt")]
    public async Task A_token_within_the_clock_skew_or_of_RFC_9068s_type_is_accepted(string kind)
    {
        var ct = TestContext.Current.CancellationToken;
        var token = kind switch
        {
            "expired 30 s ago" => TestTokens.Create(scopes: [TestTokens.SendScope], expires: DateTime.UtcNow.AddSeconds(-30)),
            "valid from 30 s from now" => TestTokens.Create(scopes: [TestTokens.SendScope], notBefore: DateTime.UtcNow.AddSeconds(30)),
            _ => TestTokens.Create(scopes: [TestTokens.SendScope], type: "at+jwt"),
        };
        using var client = Client(stack, token);
        var order = SampleOrders.Create(615_000 + kind.Length);

        using var response = await client.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);

        Assert.Equal([order.OrderId], await AcceptedIdsAsync(response, ct));
    }

    [Theory]
    [InlineData("scope")]          // one claim, space-separated
    [InlineData("repeated scope")] // one claim per scope, as dotnet user-jwts --scope writes them
    [InlineData("scp")]            // Microsoft Entra
    public async Task A_valid_token_with_the_send_scope_gets_202_however_the_issuer_spells_scopes(string form)
    {
        var ct = TestContext.Current.CancellationToken;
        var token = TestTokens.Create(client: "shop-" + form.Replace(' ', '-'), scopes: ["openid", TestTokens.SendScope],
            scopeClaim: form == "scp" ? "scp" : "scope", repeatedScopes: form == "repeated scope");
        using var client = Client(stack, token);
        var order = SampleOrders.Create(620_000 + form.Length);

        using var response = await client.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);

        Assert.Equal([order.OrderId], await AcceptedIdsAsync(response, ct));
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task A_valid_token_without_the_send_scope_gets_403_problem_details_and_nothing_is_published()
    {
        var ct = TestContext.Current.CancellationToken;
        using var client = Client(stack, TestTokens.Create(client: "reader", scopes: ["openid", TestTokens.AdminScope, "envio.sender"]));
        var order = SampleOrders.Create(630_000);
        var before = await StackTotals.TakeAsync(stack, ct);

        using var response = await client.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);
        using var batch = await client.PostAsJsonAsync("/api/orders/batch", new List<Order> { order }, WireFormat.Options, ct);

        var problem = await AssertProblemAsync(response, HttpStatusCode.Forbidden, ct);
        Assert.Contains(TestTokens.SendScope, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await AssertProblemAsync(batch, HttpStatusCode.Forbidden, ct);
        await AssertNothingPublishedAsync(stack, before, [order.OrderId], ct);
    }

    [Fact]
    public async Task The_error_queue_admin_needs_the_admin_scope_the_send_scope_is_not_enough()
    {
        var ct = TestContext.Current.CancellationToken;
        using var sender = Client(stack, TestTokens.Create(client: "shop", scopes: [TestTokens.SendScope]));
        using var admin = Client(stack, TestTokens.Create(client: "operator", scopes: [TestTokens.AdminScope]));

        using var list = await sender.GetAsync(new Uri("/admin/errors?limit=1", UriKind.Relative), ct);
        using var replay = await PostJsonAsync(sender, "/admin/errors/replay", """{ "all": true }""", ct);
        using var discard = await sender.DeleteAsync(new Uri($"/admin/errors/{Guid.NewGuid()}", UriKind.Relative), ct);
        using var allowed = await admin.GetAsync(new Uri("/admin/errors?limit=1", UriKind.Relative), ct);

        await AssertProblemAsync(list, HttpStatusCode.Forbidden, ct);
        await AssertProblemAsync(replay, HttpStatusCode.Forbidden, ct);
        await AssertProblemAsync(discard, HttpStatusCode.Forbidden, ct);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task The_deployment_manifest_asks_for_the_token_authority_and_audience_and_hands_them_to_the_api()
    {
        var ct = TestContext.Current.CancellationToken;
        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(Repository.Root, "aspire-manifest.json"), ct));
        var resources = manifest.RootElement.GetProperty("resources");
        var env = resources.GetProperty("api").GetProperty("env");

        Assert.Equal("{api-auth-authority.value}", env.GetProperty("Authentication__Schemes__Bearer__Authority").GetString());
        Assert.Equal("{api-auth-audience.value}", env.GetProperty("Authentication__Schemes__Bearer__ValidAudiences__0").GetString());
        Assert.Equal("parameter.v0", resources.GetProperty("api-auth-authority").GetProperty("type").GetString());
        Assert.Equal("parameter.v0", resources.GetProperty("api-auth-audience").GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("/health")]
    [InlineData("/alive")]
    public async Task Health_endpoints_answer_anonymous_callers_with_the_status_word_only(string path)
    {
        var ct = TestContext.Current.CancellationToken;
        using var anonymous = Client(stack, null);

        using var response = await anonymous.GetAsync(new Uri(path, UriKind.Relative), ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync(ct)); // no check names, no exceptions, no timings
    }

    [Fact]
    public async Task The_openapi_document_declares_the_bearer_scheme_and_each_operation_its_scope()
    {
        var ct = TestContext.Current.CancellationToken;
        using var anonymous = Client(stack, null);

        using var document = JsonDocument.Parse(await anonymous.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative), ct));

        var scheme = document.RootElement.GetProperty("components").GetProperty("securitySchemes").GetProperty("Bearer");
        Assert.Equal("http", scheme.GetProperty("type").GetString());
        Assert.Equal("bearer", scheme.GetProperty("scheme").GetString());
        string ScopeOf(string path, string method) =>
            document.RootElement.GetProperty("paths").GetProperty(path).GetProperty(method)
                .GetProperty("security")[0].GetProperty("Bearer")[0].GetString()!;
        Assert.Equal(TestTokens.SendScope, ScopeOf("/api/orders", "post"));
        Assert.Equal(TestTokens.SendScope, ScopeOf("/api/orders/batch", "post"));
        Assert.Equal(TestTokens.AdminScope, ScopeOf("/admin/errors", "get"));
        // Titled for the people who call it, saying how to get a token.
        var info = document.RootElement.GetProperty("info");
        Assert.Equal("Envio API", info.GetProperty("title").GetString());
        Assert.Contains("dotnet user-jwts create", info.GetProperty("description").GetString(), StringComparison.Ordinal);
    }
}
