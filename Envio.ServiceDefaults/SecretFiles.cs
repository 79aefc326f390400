using System.Collections;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Secrets from files, the way container images usually take them: an environment variable <c>NAME_FILE</c> whose
/// value is a file under <c>/run/secrets/</c> (compose's and Kubernetes' secret mounts) gives the configuration key
/// <c>NAME</c> (<c>__</c> for <c>:</c>, as for any environment variable) that file's content, so that connection strings
/// and keys need not be in the environment. Other <c>*_FILE</c> variables (<c>SSL_CERT_FILE</c>) are left alone.
/// Not the framework's key-per-file provider (<c>AddKeyPerFile</c>), which takes each key from a file's name in one
/// folder: compose names the files after the secret (<c>messaging-api-uri</c>, which two services read as different
/// keys), Kubernetes mounts each Secret as a folder of its own, and a secret that is not mounted would go unnoticed
/// until first used; here it stops the start (Envio.Tests/Security/SecretFilesKeyPerFileTests.cs).
/// </summary>
public static class SecretFiles
{
    public const string Suffix = "_FILE";

    public const string Directory = "/run/secrets/";

    public static IConfigurationBuilder AddSecretFiles(this IConfigurationBuilder configuration, IDictionary? environment = null, string directory = Directory)
    {
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry variable in environment ?? Environment.GetEnvironmentVariables())
        {
            if (variable.Key is string name && name.Length > Suffix.Length && name.EndsWith(Suffix, StringComparison.Ordinal)
                && variable.Value is string path && path.StartsWith(directory, StringComparison.Ordinal))
            {
                var key = name[..^Suffix.Length].Replace("__", ConfigurationPath.KeyDelimiter, StringComparison.Ordinal);
                values[key] = File.Exists(path)
                    ? File.ReadAllText(path).TrimEnd('\r', '\n')
                    : throw new FileNotFoundException($"{name} names '{path}', which does not exist: is the secret mounted?", path);
            }
        }
        return values.Count == 0 ? configuration : configuration.AddInMemoryCollection(values);
    }
}
