using System.Security.Cryptography;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.Contracts.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Envio.Tests.Security;

/// <summary>Key rings for tests: the one a running stack hands its services, or a fresh one.</summary>
public static class EncryptionKeysOf
{
    /// <summary>
    /// The ring the AppHost hands the api (the consumer gets the same): read from the resource's environment, the way
    /// the service itself reads it, so tests encrypt and decrypt exactly as the services do.
    /// </summary>
    public static async Task<KeyRing> AppAsync(DistributedApplication app)
    {
        var api = app.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<IResourceWithEnvironment>().Single(r => r.Name == "api");
        var configuration = await ExecutionConfigurationBuilder.Create(api).WithEnvironmentVariablesConfig()
            .BuildAsync(app.Services.GetRequiredService<DistributedApplicationExecutionContext>(), NullLogger.Instance, CancellationToken.None);
        var settings = configuration.EnvironmentVariables
            .Where(e => e.Key.StartsWith("Envio__Encryption__", StringComparison.Ordinal))
            .Select(e => KeyValuePair.Create(e.Key.Replace("__", ":", StringComparison.Ordinal), (string?)e.Value));
        return KeyRing.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
    }

    /// <summary>A ring of fresh random keys, the first current.</summary>
    public static KeyRing Fresh(params string[] keyIds) =>
        new(keyIds[0], keyIds.ToDictionary(id => id, _ => RandomNumberGenerator.GetBytes(KeyRing.KeySize)));
}
