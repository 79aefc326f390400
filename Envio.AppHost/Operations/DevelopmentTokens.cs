using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.UserSecrets;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Envio.AppHost.Operations;

/// <summary>
/// The signing key that <c>dotnet user-jwts</c> keeps in the API's user secrets, and tokens signed with it.
/// The API reads its configuration once, at start: a key the tool writes afterwards (the first
/// <c>dotnet user-jwts create</c> on a fresh machine) would be unknown to it, and every token "signature key not
/// found". So the AppHost makes the key, in the tool's own format, before the API starts; the tool then finds it
/// and signs with it, and the AppHost's dashboard commands sign with it too.
/// </summary>
internal sealed class DevelopmentTokens(string secretsPath)
{
    /// <summary>The issuer <c>dotnet user-jwts</c> writes and the API's appsettings.Development.json trusts.</summary>
    public const string Issuer = "dotnet-user-jwts";

    /// <summary>The audience the tool takes from the API's launch profile, and appsettings.Development.json trusts.</summary>
    public const string Audience = "http://localhost:5380";

    /// <summary>Where the API's development user secrets live instead of the user's own store (tests isolate it).</summary>
    public const string UserSecretsRootKey = "Envio:Development:UserSecretsRoot";

    // The tool's layout: one flat key, an array of keys by issuer.
    private const string SigningKeysKey = "Authentication:Schemes:Bearer:SigningKeys";
    private readonly Lock _gate = new();

    public string SecretsPath => secretsPath;

    /// <summary>
    /// The API's secrets file: under <see cref="UserSecretsRootKey"/> when set (laid out as under <c>APPDATA</c>,
    /// which the API and the tool then must be given too), else where the user-secrets tooling keeps it.
    /// </summary>
    public static DevelopmentTokens For(ProjectResource api, IConfiguration configuration)
    {
        var projectPath = api.GetProjectMetadata().ProjectPath;
        var userSecretsId = XDocument.Load(projectPath).Descendants("UserSecretsId").FirstOrDefault()?.Value.Trim()
            ?? throw new DistributedApplicationException($"{projectPath} has no UserSecretsId, where dotnet user-jwts keeps its key.");
        return new DevelopmentTokens(configuration[UserSecretsRootKey] is { Length: > 0 } root
            ? Path.Combine(root, "Microsoft", "UserSecrets", userSecretsId, "secrets.json")
            : PathHelper.GetSecretsPathFromSecretsId(userSecretsId));
    }

    /// <summary>The key of issuer <see cref="Issuer"/>: the one in the secrets file, or a new one written there.</summary>
    public byte[] EnsureSigningKey()
    {
        lock (_gate)
        {
            var secrets = File.Exists(secretsPath) && JsonNode.Parse(File.ReadAllText(secretsPath)) is JsonObject existing
                ? existing
                : [];
            if (secrets[SigningKeysKey] is not JsonArray keys)
            {
                keys = [];
                secrets[SigningKeysKey] = keys;
            }
            if (keys.OfType<JsonObject>().FirstOrDefault(key => (string?)key["Issuer"] == Issuer && key["Value"] is not null) is { } found)
            {
                return Convert.FromBase64String((string)found["Value"]!);
            }

            var value = RandomNumberGenerator.GetBytes(32);
            keys.Add(new JsonObject
            {
                ["Id"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)),
                ["Issuer"] = Issuer,
                ["Value"] = Convert.ToBase64String(value),
                ["Length"] = value.Length,
            });
            Directory.CreateDirectory(Path.GetDirectoryName(secretsPath)!);
            File.WriteAllText(secretsPath, secrets.ToJsonString());
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(secretsPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            return value;
        }
    }

    /// <summary>A token the API accepts in development, as <c>dotnet user-jwts create</c> would make it.</summary>
    public string Create(string subject, IReadOnlyList<string> scopes, TimeSpan lifetime)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            Claims = new Dictionary<string, object> { ["sub"] = subject, ["scope"] = string.Join(' ', scopes) },
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(EnsureSigningKey()), SecurityAlgorithms.HmacSha256),
        });
    }
}
