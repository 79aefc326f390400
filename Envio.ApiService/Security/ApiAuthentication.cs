using Microsoft.AspNetCore.Authentication.JwtBearer;
using Envio.Contracts;
using Microsoft.AspNetCore.Authorization;
using Microsoft.IdentityModel.Tokens;

namespace Envio.ApiService.Security;

/// <summary>
/// Bearer tokens (JWT) and one authorization policy per scope. Which tokens are trusted is configuration only, in
/// ASP.NET Core's standard section <c>Authentication:Schemes:Bearer</c>: an OIDC <c>Authority</c> (its discovery
/// document gives the issuer and the signing keys) and <c>ValidAudiences</c> in production; <c>ValidIssuer</c>,
/// <c>ValidAudiences</c> and <c>SigningKeys</c> as <c>dotnet user-jwts</c> writes them in development. With neither,
/// every token is refused: the API fails closed.
/// </summary>
public static class ApiAuthentication
{
    /// <summary>Signatures a token may carry: RSA, RSA-PSS, ECDSA, and HMAC (what <c>dotnet user-jwts</c> signs with).</summary>
    public static readonly string[] AcceptedAlgorithms =
    [
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
        SecurityAlgorithms.HmacSha256, SecurityAlgorithms.HmacSha384, SecurityAlgorithms.HmacSha512,
    ];

    /// <summary>
    /// Access tokens only (<c>typ</c> <c>JWT</c>, or RFC 9068's <c>at+jwt</c>): a logout, DPoP or other token the
    /// same issuer signs is not a key to the API.
    /// </summary>
    public static readonly string[] AcceptedTypes = ["JWT", "at+jwt"];

    /// <summary>The shortest symmetric signing key trusted: HMAC-SHA256's own size.</summary>
    public const int MinSymmetricKeyBits = 256;

    public static IHostApplicationBuilder AddApiAuthentication(this IHostApplicationBuilder builder)
    {
        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(options =>
            {
                // Claims keep the names the issuer gave them (scope, scp, sub, client_id), not WS-* URIs.
                options.MapInboundClaims = false;
                var validation = options.TokenValidationParameters;
                // Whatever the section says, a token must name a trusted issuer and this API, be signed, and be current.
                validation.ValidateIssuer = true;
                validation.ValidateAudience = true;
                validation.ValidateLifetime = true;
                validation.RequireExpirationTime = true;
                validation.RequireSignedTokens = true;
                validation.ValidateIssuerSigningKey = true;
                validation.ClockSkew = TimeSpan.FromMinutes(1);
                validation.ValidAlgorithms = AcceptedAlgorithms;
                validation.ValidTypes = AcceptedTypes;
                validation.NameClaimType = "sub";
                // Why a token was refused (expired, wrong audience …) helps a developer and an attacker alike.
                options.IncludeErrorDetails = builder.Environment.IsDevelopment();
            });
        builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Validate(options => !ShortSymmetricKeys(options.TokenValidationParameters).Any(),
                $"Authentication:Schemes:Bearer: a symmetric signing key is shorter than {MinSymmetricKeyBits} bits; a short HMAC key can be " +
                $"guessed offline from any token it signed. Use {MinSymmetricKeyBits / 8} random bytes or more (dotnet user-jwts makes such keys).")
            .ValidateOnStart();

        var authorization = builder.Services.AddAuthorizationBuilder()
            .AddPolicy(Scopes.Admin, policy => policy.RequireAuthenticatedUser().RequireAssertion(c => Scopes.Grants(c.User, Scopes.Admin)));
        // A type's endpoints: envio.send (every type) or the type's own scope.
        foreach (var type in DataObjectTypes.Registered)
        {
            var granting = Scopes.GrantedBy(Scopes.SendPolicyOf(type));
            authorization.AddPolicy(Scopes.SendPolicyOf(type), policy => policy.RequireAuthenticatedUser()
                .RequireAssertion(c => granting.Any(scope => Scopes.Grants(c.User, scope))));
        }

        return builder;
    }

    private static IEnumerable<SymmetricSecurityKey> ShortSymmetricKeys(TokenValidationParameters validation) =>
        (validation.IssuerSigningKeys ?? []).Append(validation.IssuerSigningKey)
            .OfType<SymmetricSecurityKey>().Where(key => key.KeySize < MinSymmetricKeyBits);

    /// <summary>Says in the problem details of a 401 or 403 what was missing (the body is RFC 9457 either way).</summary>
    public static void DescribeRefusal(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        if (problem.Status == StatusCodes.Status401Unauthorized)
        {
            problem.Detail ??= "A valid bearer token is required (Authorization: Bearer <JWT>); the WWW-Authenticate " +
                "header says why this request's token, if any, was refused.";
        }
        else if (problem.Status == StatusCodes.Status403Forbidden
            && context.HttpContext.GetEndpoint()?.Metadata.GetOrderedMetadata<IAuthorizeData>()
                .Select(a => a.Policy).LastOrDefault(p => p is not null) is { } scope)
        {
            problem.Detail ??= $"The token is valid but does not grant the scope {string.Join(" or ", Scopes.GrantedBy(scope))}.";
        }
    }
}
