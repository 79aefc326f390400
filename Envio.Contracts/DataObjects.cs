using System.Text.Json;
using System.Text.Json.Serialization;
using Envio.Contracts.DataObjects;
using Envio.Contracts.Orders;
using Envio.Contracts.Payments;

namespace Envio.Contracts;

/// <summary>
/// Every type of data object Envio carries. Adding one is its record (with its rules), a migration per engine, and
/// one line here with its <c>[JsonSerializable]</c> below; routes, queues, storage, the admin API and telemetry
/// follow from it (docs/development.md, "Adding a data object").
/// </summary>
public static class DataObjectTypes
{
    public static DataObjectRegistry Registered { get; } = new(
        DataObjectType.Of<Order>(),
        DataObjectType.Of<Payment>());
}

[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(Order))]
[JsonSerializable(typeof(Payment))]
internal sealed partial class WireFormatContext : JsonSerializerContext;
