using System.Security.Cryptography;
using Aspire.Hosting;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Extensions.Configuration;

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
        var settings = (await ResourceSettings.OfAsync(app, "api", CancellationToken.None))
            .Where(s => s.Key.StartsWith(KeyRing.SectionName + ":", StringComparison.Ordinal));
        return KeyRing.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
    }

    /// <summary>The stored columns' ring, which the AppHost hands the consumer alone.</summary>
    public static async Task<KeyRing> ColumnsAsync(DistributedApplication app)
    {
        var settings = (await ResourceSettings.OfAsync(app, "consumer", CancellationToken.None))
            .Where(s => s.Key.StartsWith(KeyRing.ColumnsSectionName + ":", StringComparison.Ordinal));
        return KeyRing.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), KeyRing.ColumnsSectionName);
    }

    /// <summary>A ring of fresh random keys, the first current.</summary>
    public static KeyRing Fresh(params string[] keyIds) =>
        new(keyIds[0], keyIds.ToDictionary(id => id, _ => RandomNumberGenerator.GetBytes(KeyRing.KeySize)));
}
