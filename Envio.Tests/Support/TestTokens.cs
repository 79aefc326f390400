using System.Net.Http.Headers;
using System.Security.Cryptography;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Envio.Tests.Support;

/// <summary>
/// Bearer tokens for the API under test. Each test process makes a signing key of its own and gives it to the API as
/// configuration (<see cref="TrustTestTokens"/>), exactly as ops give it an authority: nothing in the API is a test
/// switch. The benchmark links this file too.
/// </summary>
public static class TestTokens
{
    public const string Issuer = "envio-tests";
    public const string Audience = "envio-api";
    public const string SendScope = "envio.send";
    public const string AdminScope = "envio.admin";

    /// <summary>The client every existing test (and the benchmark) is: it may send orders and operate the error queue.</summary>
    public const string DefaultClient = "envio-tests";

    private static readonly byte[] SigningKeyBytes = RandomNumberGenerator.GetBytes(32);

    public static SymmetricSecurityKey SigningKey { get; } = new(SigningKeyBytes);

    /// <summary>Makes the stack's API trust this process's tokens (issuer, audience, key), through its standard configuration.</summary>
    public static IDistributedApplicationTestingBuilder TrustTestTokens(this IDistributedApplicationTestingBuilder builder)
    {
        const string bearer = "Authentication__Schemes__Bearer__";
        builder.CreateResourceBuilder<ProjectResource>("api")
            .WithEnvironment(bearer + "ValidIssuer", Issuer)
            .WithEnvironment(bearer + "ValidAudiences__0", Audience)
            .WithEnvironment(bearer + "SigningKeys__0__Issuer", Issuer)
            .WithEnvironment(bearer + "SigningKeys__0__Value", Convert.ToBase64String(SigningKeyBytes));
        return builder;
    }

    /// <summary>An Authorization header for <see cref="DefaultClient"/> with both scopes, valid for hours.</summary>
    public static AuthenticationHeaderValue Bearer(string client = DefaultClient) =>
        new("Bearer", Create(client: client, scopes: [SendScope, AdminScope]));

    /// <summary>
    /// A signed token (<paramref name="type"/>: its <c>typ</c> header, <c>JWT</c> when null). <paramref name="scopes"/> travel as one space-separated <c>scope</c> claim unless
    /// <paramref name="scopeClaim"/> says <c>scp</c>, or <paramref name="repeatedScopes"/> asks for one claim per scope.
    /// </summary>
    public static string Create(
        string client = DefaultClient, IReadOnlyList<string>? scopes = null, string issuer = Issuer, string audience = Audience,
        DateTime? expires = null, SecurityKey? key = null, string scopeClaim = "scope", bool repeatedScopes = false,
        DateTime? notBefore = null, string? type = null)
    {
        var expiry = expires ?? DateTime.UtcNow.AddHours(4);
        var validFrom = notBefore ?? expiry.AddHours(-5);
        var claims = new Dictionary<string, object> { ["sub"] = client, ["client_id"] = client };
        if (scopes is { Count: > 0 })
        {
            claims[scopeClaim] = repeatedScopes ? scopes.ToArray() : string.Join(' ', scopes);
        }
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = validFrom,
            NotBefore = validFrom,
            TokenType = type,
            Expires = expiry,
            Claims = claims,
            SigningCredentials = new SigningCredentials(key ?? SigningKey, SecurityAlgorithms.HmacSha256),
        });
    }

    /// <summary>A token with <c>"alg": "none"</c> and no signature, otherwise what a valid one says.</summary>
    public static string UnsignedToken(IReadOnlyList<string> scopes)
    {
        var now = DateTimeOffset.UtcNow;
        var header = Base64UrlEncoder.Encode("""{"alg":"none","typ":"JWT"}""");
        var payload = Base64UrlEncoder.Encode(
            $$"""{"iss":"{{Issuer}}","aud":"{{Audience}}","sub":"mallory","client_id":"mallory","scope":"{{string.Join(' ', scopes)}}","nbf":{{now.AddMinutes(-5).ToUnixTimeSeconds()}},"exp":{{now.AddHours(1).ToUnixTimeSeconds()}}}""");
        return $"{header}.{payload}.";
    }

    /// <summary>A client that sends <paramref name="token"/> on every request to the stack's API (no retries: every answer counts).</summary>
    public static HttpClient ApiClient(this DistributedApplication app, string? token = null) => new()
    {
        BaseAddress = app.GetEndpoint("api", "http"),
        DefaultRequestHeaders = { Authorization = token is null ? Bearer() : new AuthenticationHeaderValue("Bearer", token) },
    };
}
