using Envio.Contracts.Security;

namespace Envio.ConsumerService.Persistence;

public static class KeyRings
{
    /// <summary>
    /// The message ring (opens bodies) and, keyed <see cref="KeyRing.ColumnsServiceKey"/>, the columns' ring (seals
    /// what is stored; the message ring where none is configured). Read at once: a missing or malformed key stops the
    /// start instead of the first message.
    /// </summary>
    public static IHostApplicationBuilder AddKeyRings(this IHostApplicationBuilder builder)
    {
        var messageKeys = KeyRing.FromConfiguration(builder.Configuration);
        builder.Services.AddSingleton(messageKeys);
        builder.Services.AddKeyedSingleton(KeyRing.ColumnsServiceKey, KeyRing.ForColumns(builder.Configuration, messageKeys));
        return builder;
    }
}
