using System.Security.Claims;

namespace Envio.ApiService.Security;

/// <summary>
/// Who a caller is, as far as its limits and its orders go: the client the token was issued to, <c>client_id</c>
/// (OAuth client credentials), else <c>azp</c> (OIDC), else <c>sub</c>.
/// </summary>
public static class ClientIdentity
{
    private static readonly string[] ClaimTypes = ["client_id", "azp", "sub"];

    /// <summary>The claim that names the client and its value, or null for a caller without any of them.</summary>
    public static (string Type, string Value)? Of(ClaimsPrincipal user)
    {
        foreach (var type in ClaimTypes)
        {
            if (user.FindFirst(type)?.Value is { Length: > 0 } value)
            {
                return (type, value);
            }
        }
        return null;
    }
}
