using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Envio.Tests.DataObjects;

/// <summary>Records of the tests' own, to show what the conventions accept, refuse and check (outside the registry).</summary>
public static class TestTypes
{
    public static DataObjectType<T> Of<T>() where T : class => DataObjectType.Of((System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)TestJsonContext.Default.GetTypeInfo(typeof(T))!);
}

/// <summary>Version 2 of a parcel: v1 had one "weight" in grams, v2 has "weightKg".</summary>
[DataObject("parcel", SchemaVersion = 2)]
public sealed record Parcel
{
    public Guid ParcelId { get; init; }

    [MaxLength(20)]
    public required string Label { get; init; }

    public required decimal WeightKg { get; init; }

    public static JsonObject Upcast(int fromVersion, JsonObject body)
    {
        if (fromVersion == 1 && body["weight"] is { } grams)
        {
            body.Remove("weight");
            body["weightKg"] = grams.GetValue<decimal>() / 1000m;
        }
        return body;
    }

    public static JsonObject Downcast(int toVersion, JsonObject body)
    {
        if (toVersion == 1 && body["weightKg"] is { } kilograms)
        {
            body.Remove("weightKg");
            body["weight"] = kilograms.GetValue<decimal>() * 1000m;
        }
        return body;
    }
}

/// <summary>Version 2 with no way to read version 1: refused at start.</summary>
[DataObject("unreadable", SchemaVersion = 2)]
public sealed record Unreadable
{
    public Guid UnreadableId { get; init; }
}

/// <summary>Rules by attributes, and what a table makes of an object, a collection and optional values.</summary>
[DataObject("invoice")]
public sealed record Invoice
{
    public Guid InvoiceId { get; init; }

    [Required, MaxLength(10)]
    public required string Number { get; init; }

    [EmailAddress, MaxLength(100)]
    public string? BillTo { get; init; }

    [Range(1, 10)]
    public int Copies { get; init; }

    public required Party Seller { get; init; }

    public Party? Buyer { get; init; }

    [MinLength(1), MaxLength(3)]
    public required IReadOnlyList<InvoiceLine> Lines { get; init; }

    public Kind Kind { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
}

public sealed record Party
{
    [MaxLength(50)]
    public required string Name { get; init; }

    [Sealed, MaxLength(20)]
    public string? TaxId { get; init; }
}

public sealed record InvoiceLine
{
    [MaxLength(30)]
    public required string Text { get; init; }

    public decimal Amount { get; init; }

    public DateOnly? ServedOn { get; init; }
}

public enum Kind
{
    [JsonStringEnumMemberName("standard")]
    Standard = 1,

    [JsonStringEnumMemberName("creditNote")]
    CreditNote,
}

/// <summary>Lines inside lines: deeper than one child table.</summary>
[DataObject("deep")]
public sealed record Deep
{
    public Guid DeepId { get; init; }

    [MaxLength(5)]
    public required IReadOnlyList<DeepLine> Lines { get; init; }
}

public sealed record DeepLine
{
    [MaxLength(5)]
    public required IReadOnlyList<InvoiceLine> Parts { get; init; }
}

/// <summary>A collection without a bound.</summary>
[DataObject("unbounded")]
public sealed record Unbounded
{
    public Guid UnboundedId { get; init; }

    public required IReadOnlyList<InvoiceLine> Lines { get; init; }
}

/// <summary>A value type Envio does not store.</summary>
[DataObject("floating")]
public sealed record Floating
{
    public Guid FloatingId { get; init; }

    public double Ratio { get; init; }
}

/// <summary>No id.</summary>
[DataObject("anonymous")]
public sealed record Anonymous
{
    [MaxLength(5)]
    public string? Name { get; init; }
}

/// <summary>A second type whose object is also called Party (another namespace): their schemas must not merge.</summary>
[DataObject("receipt")]
public sealed record Receipt
{
    public Guid ReceiptId { get; init; }

    public required Other.Party Issuer { get; init; }
}

[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(Parcel))]
[JsonSerializable(typeof(List<Parcel>))]
[JsonSerializable(typeof(Unreadable))]
[JsonSerializable(typeof(List<Unreadable>))]
[JsonSerializable(typeof(Invoice))]
[JsonSerializable(typeof(List<Invoice>))]
[JsonSerializable(typeof(Deep))]
[JsonSerializable(typeof(List<Deep>))]
[JsonSerializable(typeof(Unbounded))]
[JsonSerializable(typeof(List<Unbounded>))]
[JsonSerializable(typeof(Floating))]
[JsonSerializable(typeof(List<Floating>))]
[JsonSerializable(typeof(Receipt))]
[JsonSerializable(typeof(List<Receipt>))]
[JsonSerializable(typeof(Other.Party), TypeInfoPropertyName = "OtherParty")]
[JsonSerializable(typeof(Anonymous))]
[JsonSerializable(typeof(List<Anonymous>))]
internal sealed partial class TestJsonContext : JsonSerializerContext;
