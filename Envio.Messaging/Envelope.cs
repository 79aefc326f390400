using System.Globalization;
using System.Text;
using RabbitMQ.Client;

namespace Envio.Messaging;

/// <summary>
/// What every Envio message says about itself, carried in the AMQP properties so the body can stay opaque
/// (and be encrypted) while the consumer still knows what it holds and can deduplicate by id. <see cref="ClientId"/> is
/// the client the API accepted the message from (its token's <c>client_id</c>, <c>azp</c> or <c>sub</c>); messages
/// published before it existed have none.
/// </summary>
public sealed record Envelope(
    Guid MessageId, string Type, int SchemaVersion, DateTimeOffset CreatedAt, string? CorrelationId, string? ClientId = null)
{
    public const string SchemaVersionHeader = "envio-schema-version";
    public const string CreatedAtHeader = "envio-created-at";
    public const string ClientIdHeader = "envio-client-id";

    /// <summary>The longest client id a message carries (and the <c>orders.client_id</c> column holds).</summary>
    public const int MaxClientIdLength = 256;

    /// <summary>Properties of a persistent message carrying this envelope.</summary>
    public BasicProperties ToProperties(string contentType)
    {
        var properties = new BasicProperties
        {
            Persistent = true,
            MessageId = MessageId.ToString(),
            Type = Type,
            ContentType = contentType,
            CorrelationId = CorrelationId,
            Timestamp = new AmqpTimestamp(CreatedAt.ToUnixTimeSeconds()),
            Headers = new Dictionary<string, object?>
            {
                [SchemaVersionHeader] = SchemaVersion,
                [CreatedAtHeader] = CreatedAt.ToString("O", CultureInfo.InvariantCulture),
            },
        };
        if (ClientId is not null)
        {
            properties.Headers[ClientIdHeader] = ClientId;
        }
        return properties;
    }

    /// <summary>Reads the envelope back; null with a reason when a property is missing or malformed.</summary>
    public static Envelope? FromProperties(IReadOnlyBasicProperties properties, out string? problem)
    {
        problem = null;
        if (!Guid.TryParse(properties.MessageId, out var messageId) || messageId == Guid.Empty)
        {
            problem = $"The message id '{properties.MessageId}' is not a UUID.";
            return null;
        }
        if (string.IsNullOrEmpty(properties.Type))
        {
            problem = "The message has no type.";
            return null;
        }
        var headers = properties.Headers;
        if (headers is null || !headers.TryGetValue(SchemaVersionHeader, out var version) || version is not int schemaVersion)
        {
            problem = $"The message has no integer {SchemaVersionHeader} header.";
            return null;
        }
        if (!headers.TryGetValue(CreatedAtHeader, out var created)
            || !DateTimeOffset.TryParse(Text(created), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var createdAt))
        {
            problem = $"The message has no {CreatedAtHeader} header.";
            return null;
        }
        string? clientId = null;
        if (headers.TryGetValue(ClientIdHeader, out var client))
        {
            clientId = Text(client);
            if (clientId is not { Length: > 0 and <= MaxClientIdLength })
            {
                problem = $"The {ClientIdHeader} header is not a text of 1 to {MaxClientIdLength} characters.";
                return null;
            }
        }
        return new Envelope(messageId, properties.Type, schemaVersion, createdAt, properties.CorrelationId, clientId);
    }

    // AMQP delivers string headers as byte arrays.
    private static string? Text(object? value) => value switch
    {
        byte[] bytes => Encoding.UTF8.GetString(bytes),
        string text => text,
        _ => null,
    };
}
