using System.Security.Cryptography;
using Aspire.Hosting.Publishing;
using Microsoft.Extensions.Configuration;

namespace Envio.AppHost.Hosting;

/// <summary>
/// The key ring the services encrypt message bodies and personal columns with. Each key is a secret parameter
/// <c>encryption-key-&lt;id&gt;</c>: generated on first run (32 random bytes, base64) and kept in the AppHost's user
/// secrets; in a deployment an input the manifest asks for. The current key is <c>Envio:Encryption:CurrentKeyId</c>
/// (default <c>k1</c>); keys that must still decrypt (rotation) are <c>Envio:Encryption:PreviousKeyIds</c>, comma-separated.
/// </summary>
internal static class EncryptionKeys
{
    public const string CurrentKeyIdSetting = "Envio:Encryption:CurrentKeyId";
    public const string PreviousKeyIdsSetting = "Envio:Encryption:PreviousKeyIds";
    public const string DefaultKeyId = "k1";

    /// <summary>Hands the service the whole ring as <c>Envio__Encryption__CurrentKeyId</c> and <c>Envio__Encryption__Keys__&lt;id&gt;</c>.</summary>
    public static IResourceBuilder<T> WithEncryptionKeys<T>(this IResourceBuilder<T> builder)
        where T : IResourceWithEnvironment
    {
        var configuration = builder.ApplicationBuilder.Configuration;
        var current = configuration[CurrentKeyIdSetting] is { Length: > 0 } configured ? configured.Trim() : DefaultKeyId;
        var previous = (configuration[PreviousKeyIdsSetting] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        builder.WithEnvironment("Envio__Encryption__CurrentKeyId", current);
        foreach (var keyId in previous.Prepend(current).Distinct(StringComparer.Ordinal))
        {
            builder.WithEnvironment($"Envio__Encryption__Keys__{keyId}", KeyParameter(builder.ApplicationBuilder, keyId));
        }
        return builder;
    }

    /// <summary>One parameter per key, shared by every service that is handed it.</summary>
    private static IResourceBuilder<ParameterResource> KeyParameter(IDistributedApplicationBuilder builder, string keyId)
    {
        var name = $"encryption-key-{keyId}";
        if (builder.Resources.OfType<ParameterResource>().FirstOrDefault(p => p.Name == name) is { } existing)
        {
            return builder.CreateResourceBuilder(existing);
        }
        // Published, the key is an input ops supply (a generated default would not be a valid AES key to every tool).
        return builder.ExecutionContext.IsPublishMode
            ? builder.AddParameter(name, secret: true)
            : builder.AddParameter(name, new RandomKeyDefault(), secret: true, persist: true);
    }

    /// <summary>
    /// 32 random bytes in base64: what an AES-256 key needs. <see cref="GenerateParameterDefault"/> makes passwords
    /// from character classes, whose text is not the base64 of 32 bytes.
    /// </summary>
    private sealed class RandomKeyDefault : ParameterDefault
    {
        public override string GetDefaultValue() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

        public override void WriteToManifest(ManifestPublishingContext context)
        {
            // Never reached: in publish mode the parameter has no default.
        }
    }
}
