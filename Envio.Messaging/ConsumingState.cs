using System.Text.Json;
using System.Text.Json.Serialization;
using RabbitMQ.Client;

namespace Envio.Messaging;

/// <summary>
/// What the operators want of the consumers, whole: the types whose consuming is paused (by name), and a sequence
/// number that grows with every command, so a consumer tells a newer state from one it applied already.
/// </summary>
public sealed record ConsumingState(long Sequence, IReadOnlyList<string> Paused)
{
    public static ConsumingState Initial { get; } = new(0, []);

    /// <summary>The next state: <paramref name="command"/> applied to <paramref name="types"/> (names).</summary>
    public ConsumingState Next(string command, IEnumerable<string> types) => new(Sequence + 1, command == ConsumerControl.Pause
        ? [.. Paused.Union(types, StringComparer.Ordinal).Order(StringComparer.Ordinal)]
        : [.. Paused.Except(types, StringComparer.Ordinal).Order(StringComparer.Ordinal)]);

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, ControlJson.Default.ConsumingState);

    /// <summary>The state a control message's body carries; null for a body without one (a command of an earlier API).</summary>
    public static ConsumingState? FromJson(ReadOnlyMemory<byte> body)
    {
        if (body.IsEmpty)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(body.Span, ControlJson.Default.ConsumingState);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// The kept state (<see cref="ConsumerControl.StateQueue"/>) without taking it: every message there is got and then
    /// handed back with one nack, and the one with the highest sequence wins (a message handed back while a newer one
    /// was published can leave two for a moment). Another reader holding it for those milliseconds makes the queue look
    /// empty, so an empty queue is looked at again twice before it counts as "no state yet". Null when there is none.
    /// </summary>
    public static async Task<KeptState?> ReadKeptAsync(IChannel channel, TopologyOptions options, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            KeptState? newest = null;
            ulong last = 0;
            for (var taken = 0; taken < 16 && await channel.BasicGetAsync(ConsumerControl.StateQueue(options), autoAck: false, cancellationToken) is { } message; taken++)
            {
                last = message.DeliveryTag;
                if (FromJson(message.Body) is { } state && (newest is null || state.Sequence > newest.State.Sequence))
                {
                    newest = new KeptState(state, message.BasicProperties.UserId, message.BasicProperties.AppId, message.BasicProperties.ReplyTo);
                }
            }
            if (last > 0)
            {
                await channel.BasicNackAsync(last, multiple: true, requeue: true, cancellationToken);
            }
            if (newest is not null || last > 0 || attempt == 2)
            {
                return newest;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }
    }
}

/// <summary>A state as it was kept: with the broker-validated user that published it, its sender's display name and where confirmations go.</summary>
public sealed record KeptState(ConsumingState State, string? UserId, string? AppId, string? ReplyTo);

/// <summary>A consumer's answer to a command: it now applies <paramref name="Sequence"/>, with these types paused.</summary>
public sealed record ConsumingConfirmation(string Consumer, long Sequence, IReadOnlyList<string> Paused)
{
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, ControlJson.Default.ConsumingConfirmation);

    public static ConsumingConfirmation? FromJson(ReadOnlyMemory<byte> body)
    {
        try
        {
            return JsonSerializer.Deserialize(body.Span, ControlJson.Default.ConsumingConfirmation);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(ConsumingState))]
[JsonSerializable(typeof(ConsumingConfirmation))]
internal sealed partial class ControlJson : JsonSerializerContext;
