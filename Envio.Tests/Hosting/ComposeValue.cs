using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Envio.Tests.Hosting;

/// <summary>
/// A manifest value written the way docker-compose.yml must write it: inputs as <c>${NAME}</c>, a resource's host as
/// its compose service name, its port as the container port; and the comparison with compose's own text.
/// </summary>
internal static partial class ComposeValue
{
    /// <summary>The port an ASP.NET Core container listens on when the manifest names none (HTTP_PORTS' default).</summary>
    private const string DefaultHttpPort = "8080";

    /// <summary>Expands every <c>{resource.…}</c> reference of <paramref name="value"/>, recursively.</summary>
    public static string Of(string value, IReadOnlyDictionary<string, JsonElement> manifest) =>
        Reference().Replace(value, match =>
        {
            var parts = match.Groups[1].Value.Split('.');
            var resource = manifest[parts[0]];
            return parts switch
            {
                [var input, "value"] when resource.GetProperty("type").GetString() == "parameter.v0" => "${" + Variable(input) + "}",
                [_, "connectionString"] => Of(resource.GetProperty("connectionString").GetString()!, manifest),
                [var service, "bindings", _, "host"] => service,
                [_, "bindings", var binding, "port" or "targetPort"] => TargetPort(resource, binding),
                _ => throw new InvalidOperationException($"The manifest's reference {match.Value} has no compose equivalent here."),
            };
        });

    /// <summary>
    /// Whether compose's text means <paramref name="expected"/>: equal once each <c>${NAME…}</c> is reduced to
    /// <c>${NAME}</c>; a literal given as an overridable default <c>${NAME:-literal}</c>; and for ADO.NET connection
    /// strings, every setting of the manifest's with the same value (compose may add settings).
    /// </summary>
    public static bool Matches(string expected, string actual)
    {
        if (!expected.Contains("${", StringComparison.Ordinal) && DefaultOnly().Match(actual) is { Success: true } withDefault)
        {
            return withDefault.Groups[1].Value == expected;
        }
        var reduced = Substitution().Replace(actual, m => "${" + m.Groups[1].Value + "}");
        if (!expected.Contains("://", StringComparison.Ordinal) && expected.Contains(';', StringComparison.Ordinal))
        {
            var wanted = new DbConnectionStringBuilder { ConnectionString = expected };
            var given = new DbConnectionStringBuilder { ConnectionString = reduced };
            return wanted.Keys.Cast<string>().All(key => given.TryGetValue(key, out var v) && Equals(v, wanted[key]));
        }
        return reduced == expected;
    }

    /// <summary>A manifest input's variable in .env: <c>messaging-password</c> is <c>MESSAGING_PASSWORD</c>.</summary>
    public static string Variable(string input) => input.ToUpperInvariant().Replace('-', '_');

    private static string TargetPort(JsonElement resource, string binding) =>
        resource.GetProperty("bindings").GetProperty(binding).TryGetProperty("targetPort", out var port)
            ? port.GetInt32().ToString(CultureInfo.InvariantCulture)
            : DefaultHttpPort;

    [GeneratedRegex(@"\{([a-z0-9-]+(\.[A-Za-z0-9-]+)+)\}")]
    private static partial Regex Reference();

    /// <summary>Compose's <c>${NAME}</c>, <c>${NAME:-default}</c>, <c>${NAME:?message}</c> and the like.</summary>
    [GeneratedRegex(@"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}")]
    private static partial Regex Substitution();

    [GeneratedRegex(@"^\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}$")]
    private static partial Regex DefaultOnly();
}
