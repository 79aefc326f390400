using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Envio.Contracts.DataObjects;

/// <summary>
/// How data objects travel: UTF-8 JSON, camelCase, unknown and duplicate properties refused, written by the
/// source-generated serializer of <see cref="DataObjectTypes"/> (no reflection on the hot path). Missing members are not
/// a serializer error: they stay empty and the type's rules report every one of them at once, which is what a client
/// fixing a request wants.
/// </summary>
public static class WireFormat
{
    public const string ContentType = "application/json";

    public static JsonSerializerOptions Options { get; } = new(WireFormatContext.Default.Options)
    {
        TypeInfoResolver = JsonTypeInfoResolver.Combine(WireFormatContext.Default, ListsOfDataObjects.Instance)
            .WithAddedModifier(static typeInfo =>
            {
                foreach (var property in typeInfo.Properties)
                {
                    property.IsRequired = false;
                }
            }),
    };

    internal static JsonTypeInfo TypeInfo(Type type)
    {
        try
        {
            return Options.GetTypeInfo(type);
        }
        catch (NotSupportedException e)
        {
            throw new InvalidOperationException(
                $"{type.Name} has no JSON metadata: add [JsonSerializable(typeof({type.Name}))] to WireFormatContext beside its registration (Envio.Contracts/DataObjects.cs).", e);
        }
    }

    /// <summary>
    /// <c>List&lt;T&gt;</c> of a type the context knows, made from the element's metadata: a batch body is a JSON array,
    /// and this spares each registration a second <c>[JsonSerializable]</c>.
    /// </summary>
    private sealed class ListsOfDataObjects : IJsonTypeInfoResolver
    {
        public static readonly ListsOfDataObjects Instance = new();

        public JsonTypeInfo? GetTypeInfo(Type type, JsonSerializerOptions options) =>
            type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>)
                ? Accessors.Invoke<JsonTypeInfo>(typeof(ListsOfDataObjects), nameof(ListOf), [type.GetGenericArguments()[0]], null, options)
                : null;

        private static JsonTypeInfo ListOf<T>(JsonSerializerOptions options) =>
            JsonMetadataServices.CreateListInfo<List<T>, T>(options, new JsonCollectionInfoValues<List<T>>
            {
                ObjectCreator = static () => [],
                ElementInfo = (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T)),
            });
    }
}
