using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Envio.Contracts.Orders;

namespace Envio.Contracts.Messaging;

/// <summary>
/// How objects travel: UTF-8 JSON, camelCase, written by source-generated serializers (no reflection on the hot path).
/// Missing members are not a serializer error: they stay empty and <see cref="OrderValidator"/> reports every one of
/// them at once, which is what a client fixing a request wants.
/// </summary>
public static class WireFormat
{
    public const string ContentType = "application/json";

    public const string OrderType = "envio.order";

    public const int OrderSchemaVersion = 1;

    public static JsonSerializerOptions Options { get; } = new(WireFormatContext.Default.Options)
    {
        TypeInfoResolver = WireFormatContext.Default.WithAddedModifier(static typeInfo =>
        {
            foreach (var property in typeInfo.Properties)
            {
                property.IsRequired = false;
            }
        }),
    };

    public static JsonTypeInfo<Order> Order { get; } = (JsonTypeInfo<Order>)Options.GetTypeInfo(typeof(Order));

    public static JsonTypeInfo<List<Order>> OrderList { get; } = (JsonTypeInfo<List<Order>>)Options.GetTypeInfo(typeof(List<Order>));

    public static byte[] Serialize(Order order) => JsonSerializer.SerializeToUtf8Bytes(order, Order);

    public static Order? DeserializeOrder(ReadOnlySpan<byte> body) => JsonSerializer.Deserialize(body, Order);
}

[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(Order))]
[JsonSerializable(typeof(List<Order>))]
internal sealed partial class WireFormatContext : JsonSerializerContext;
