using System.Security.Claims;
using Envio.Contracts.DataObjects;

namespace Envio.ApiService.Security;

/// <summary>The scopes a token must carry, and the authorization policies named after them.</summary>
public static class Scopes
{
    /// <summary>Send data objects of every type: <c>POST /api/{plural}</c> and <c>/api/{plural}/batch</c>.</summary>
    public const string Send = "envio.send";

    /// <summary>
    /// The policy of a type's endpoints, named after the scope that allows that type only (<c>envio.send.payments</c>,
    /// see <see cref="DataObjectType.SendScope"/>): a token with it, or with <see cref="Send"/>, may send the type.
    /// </summary>
    public static string SendPolicyOf(DataObjectType type) => type.SendScope;

    /// <summary>The scopes that allow what a policy guards: a type's own scope and <see cref="Send"/>, or the policy's own.</summary>
    public static IReadOnlyList<string> GrantedBy(string policy) =>
        policy.StartsWith(Send + ".", StringComparison.Ordinal) ? [Send, policy] : [policy];

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
