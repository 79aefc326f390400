using System.Text;
using System.Text.Json.Nodes;
using Envio.ConsumerService.Messaging;
using Envio.Contracts.Security;
using Envio.Messaging;
using Envio.Tests.Security;

namespace Envio.Tests.DataObjects;

/// <summary>
/// Versions through a rolling update: a consumer reads older bodies through the record's upcaster, and says a newer
/// one is newer (it is deferred, never dead-lettered: see the pipeline test); the API can write the previous version
/// through the record's downcaster until every consumer reads the new one.
/// </summary>
public sealed class SchemaVersionTests
{
    private static readonly KeyRing Keys = EncryptionKeysOf.Fresh("k");
    private static readonly DataObjectType<Parcel> Parcels = TestTypes.Of<Parcel>();

    [Fact]
    public void An_older_body_is_upcast_and_read()
    {
        var id = Guid.CreateVersion7();

        var decoded = new MessageDecoder(Keys).Decode(Parcels, Delivery(id, 1, $$"""{"parcelId":"{{id}}","label":"box","weight":2500}"""));

        Assert.Null(decoded.Problem);
        Assert.Equal(2.5m, decoded.Value!.Value.WeightKg);
    }

    [Fact]
    public void A_newer_body_is_newer_not_invalid()
    {
        var id = Guid.CreateVersion7();

        var decoded = new MessageDecoder(Keys).Decode(Parcels, Delivery(id, 3, $$"""{"parcelId":"{{id}}","label":"box","grams":1}"""));

        Assert.True(decoded.IsNewer);
        Assert.Null(decoded.Value);
        Assert.Contains("newer than this consumer reads (2)", decoded.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void The_previous_version_is_written_through_the_downcaster_and_reads_back_the_same()
    {
        var parcel = new Parcel { ParcelId = Guid.CreateVersion7(), Label = "box", WeightKg = 1.25m };

        var v1 = Parcels.Serialize(parcel, 1);

        Assert.Equal(1250m, JsonNode.Parse(v1)!["weight"]!.GetValue<decimal>());
        Assert.Null(JsonNode.Parse(v1)!["weightKg"]);
        Assert.Equal(parcel, Parcels.Deserialize(v1, 1));
        Assert.True(Parcels.CanWrite(1));
        Assert.False(Parcels.CanWrite(3));
    }

    private static Delivery Delivery(Guid id, int version, string json)
    {
        var envelope = new Envelope(id, Parcels.WireType, version, DateTimeOffset.UtcNow, null);
        return new Delivery(1, 0, EncryptedBody.Properties(envelope), EncryptedBody.Seal(Keys, envelope, Encoding.UTF8.GetBytes(json)), false);
    }
}
