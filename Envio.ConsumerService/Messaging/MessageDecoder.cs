using System.Text.Json;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.DataObjects;
using Envio.Contracts.Security;
using Envio.Messaging;

namespace Envio.ConsumerService.Messaging;

/// <summary>What a delivery turned out to be: a data object, a message that cannot be one (and why), or one of a newer schema version.</summary>
public readonly record struct Decoded<T>(Received<T>? Value, string? Problem = null, Exception? Exception = null, bool IsNewer = false) where T : class;

/// <summary>
/// Turns a delivery back into a data object of its queue's type, or says why it cannot be one. What this rejects is a
/// permanent failure: retrying would give the same answer, so the message goes to the error queue. A body must be
/// encrypted (see <see cref="EncryptedBody"/>): plaintext, a key not in the ring, or a body that fails authentication is
/// refused. A newer schema version than this build knows is not a failure: it waits for a consumer that knows it.
/// </summary>
public sealed class MessageDecoder(KeyRing keys)
{
    public Decoded<T> Decode<T>(DataObjectType<T> type, Delivery delivery) where T : class
    {
        var envelope = Envelope.FromProperties(delivery.Properties, out var problem);
        if (envelope is null)
        {
            return new(null, problem);
        }
        if (envelope.Type != type.WireType)
        {
            return new(null, $"Unknown message type '{envelope.Type}'.");
        }
        if (envelope.SchemaVersion > type.SchemaVersion)
        {
            return new(null, $"Schema version {envelope.SchemaVersion} of {envelope.Type} is newer than this consumer reads ({type.SchemaVersion}): " +
                "it waits for a consumer that knows it.", IsNewer: true);
        }
        if (envelope.SchemaVersion < 1)
        {
            return new(null, $"Unknown schema version {envelope.SchemaVersion} of {envelope.Type} (this consumer reads 1 to {type.SchemaVersion}).");
        }

        var scheme = EncryptedBody.SchemeOf(delivery.Properties);
        if (scheme != EncryptedBody.Scheme)
        {
            return new(null, scheme is null
                ? $"The body is not encrypted (no {EncryptedBody.SchemeHeader} header): plaintext bodies are refused."
                : $"Unknown encryption scheme '{scheme}' (this consumer reads {EncryptedBody.Scheme}).");
        }
        byte[] json;
        try
        {
            json = EncryptedBody.Open(keys, envelope, delivery.Body.Span);
        }
        catch (UndecryptableException e)
        {
            return new(null, $"The body cannot be decrypted: {FailureText.Of(e)}", e);
        }

        T? value;
        try
        {
            value = type.Deserialize(json, envelope.SchemaVersion); // an older version upcast by its record
        }
        catch (JsonException e)
        {
            return new(null, $"The body is not a valid {type.Name}: {FailureText.Of(e)}", e);
        }

        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        type.Validate(value, "", errors);
        if (errors.Count > 0)
        {
            return new(null, $"The {type.Name} is not valid: " + string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
        }
        var id = type.IdOf(value!);
        if (id != envelope.MessageId)
        {
            return new(null, $"The {type.Name} id {id} differs from the message id {envelope.MessageId}.");
        }
        return new(new Received<T>(value!, id, envelope.CorrelationId, envelope.ClientId));
    }
}
