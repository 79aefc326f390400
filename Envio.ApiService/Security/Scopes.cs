using System.Security.Claims;

namespace Envio.ApiService.Security;

/// <summary>The scopes a token must carry, and the authorization policies named after them.</summary>
public static class Scopes
{
    /// <summary>Send orders: <c>POST /api/orders</c> and <c>/api/orders/batch</c>.</summary>
    public const string Send = "envio.send";

    /// <summary>Operate the error queue: <c>/admin/errors</c>.</summary>
    public const string Admin = "envio.admin";

    /// <summary>
    /// Whether the user's token grants <paramref name="scope"/>. Issuers spell scopes three ways: one space-separated
    /// <c>scope</c> claim (RFC 8693, most OIDC servers), one <c>scope</c> claim per scope (a JSON array, which
    /// <c>dotnet user-jwts --scope</c> writes) and Microsoft Entra's <c>scp</c>; each is accepted.
    /// </summary>
    public static bool Grants(ClaimsPrincipal user, string scope) =>
        user.Claims.Any(claim => claim.Type is "scope" or "scp"
            && claim.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(scope, StringComparer.Ordinal));
}
