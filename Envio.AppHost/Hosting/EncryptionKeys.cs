using System.Security.Cryptography;
using Aspire.Hosting.Publishing;
using Microsoft.Extensions.Configuration;

namespace Envio.AppHost.Hosting;

/// <summary>
/// The two key rings: the messages' (both services), and the stored columns' (the consumer only, so that the
/// internet-facing API cannot open what the database keeps). Each key is a secret parameter,
/// <c>encryption-key-&lt;id&gt;</c> or <c>column-key-&lt;id&gt;</c>: generated on first run (32 random bytes, base64) and
/// kept in the AppHost's user secrets; in a deployment an input the manifest asks for. The current keys are
/// <c>Envio:Encryption:CurrentKeyId</c> (default <c>k1</c>) and <c>Envio:Encryption:Columns:CurrentKeyId</c> (default
/// <c>c1</c>); keys that must still decrypt (rotation) are each ring's <c>PreviousKeyIds</c>, comma-separated.
/// </summary>
internal static class EncryptionKeys
{
    public const string DefaultKeyId = "k1";
    public const string ColumnsSection = "Envio:Encryption:Columns";
    public const string DefaultColumnKeyId = "c1";

    /// <summary>Hands the service the messages' ring as <c>Envio__Encryption__CurrentKeyId</c> and <c>Envio__Encryption__Keys__&lt;id&gt;</c>.</summary>
    public static IResourceBuilder<T> WithEncryptionKeys<T>(this IResourceBuilder<T> builder)
        where T : IResourceWithEnvironment =>
        builder.WithRing("Envio:Encryption", DefaultKeyId, "encryption-key");

    /// <summary>Hands the service the stored columns' ring as <c>Envio__Encryption__Columns__CurrentKeyId</c> and <c>…__Columns__Keys__&lt;id&gt;</c>.</summary>
    public static IResourceBuilder<T> WithColumnKeys<T>(this IResourceBuilder<T> builder)
        where T : IResourceWithEnvironment =>
        builder.WithRing(ColumnsSection, DefaultColumnKeyId, "column-key");

    private static IResourceBuilder<T> WithRing<T>(this IResourceBuilder<T> builder, string section, string defaultKeyId, string parameterPrefix)
        where T : IResourceWithEnvironment
    {
        var configuration = builder.ApplicationBuilder.Configuration;
        var current = configuration[$"{section}:CurrentKeyId"] is { Length: > 0 } configured ? configured.Trim() : defaultKeyId;
        var previous = (configuration[$"{section}:PreviousKeyIds"] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var variable = section.Replace(":", "__", StringComparison.Ordinal);

        builder.WithEnvironment($"{variable}__CurrentKeyId", current);
        foreach (var keyId in previous.Prepend(current).Distinct(StringComparer.Ordinal))
        {
            builder.WithEnvironment($"{variable}__Keys__{keyId}", KeyParameter(builder.ApplicationBuilder, $"{parameterPrefix}-{keyId}"));
        }
        return builder;
    }

    /// <summary>One parameter per key, shared by every service that is handed it.</summary>
    private static IResourceBuilder<ParameterResource> KeyParameter(IDistributedApplicationBuilder builder, string name)
    {
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
