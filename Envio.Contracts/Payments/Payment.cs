using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using Envio.Contracts.DataObjects;

namespace Envio.Contracts.Payments;

/// <summary>
/// A payment a customer made towards something they owe (an invoice, an order): the second data object Envio carries,
/// and a different shape from an order: no child list, optional properties, a date, an enumeration, and a payer whose
/// document is sealed.
/// Its <see cref="PaymentId"/> is also the message id: a client that retries with the same id is absorbed.
/// </summary>
[DataObject("payment")]
public sealed record Payment
{
    public Guid PaymentId { get; init; }

    /// <summary>What the payment is for, in the payer's own terms: an invoice number, an order id.</summary>
    [Required, MaxLength(64)]
    public required string Reference { get; init; }

    public required PaymentMethod Method { get; init; }

    [Range(typeof(decimal), "0.01", "999999999999999")]
    public required decimal Amount { get; init; }

    /// <summary>ISO 4217 code, e.g. <c>BRL</c>.</summary>
    [CurrencyCode]
    public required string Currency { get; init; }

    public required Payer Payer { get; init; }

    /// <summary>The day the payment was due, when it settles a bill with a due date.</summary>
    public DateOnly? DueDate { get; init; }

    [MaxLength(500)]
    public string? Note { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>The example the interactive API reference offers, ready to send.</summary>
    public static Payment Example => new()
    {
        PaymentId = Guid.Parse("0193a6a0-7b1c-7cc2-9d51-3f1e2a4b5c6d"),
        Reference = "INV-2026-00042",
        Method = PaymentMethod.Pix,
        Amount = 93.30m,
        Currency = "BRL",
        Payer = new Payer { Name = "Ana Souza", Document = "123.456.789-09" },
        DueDate = new DateOnly(2026, 12, 1),
        Note = "Second instalment",
        CreatedAt = new DateTimeOffset(2026, 11, 27, 10, 15, 0, TimeSpan.Zero),
    };
}

/// <summary>Who paid.</summary>
public sealed record Payer
{
    [Required, MaxLength(200)]
    public required string Name { get; init; }

    /// <summary>The payer's tax or identity document number: personal data, stored encrypted.</summary>
    [Sealed, MaxLength(50)]
    public required string Document { get; init; }
}

/// <summary>How a payment was made; in JSON by these names.</summary>
public enum PaymentMethod
{
    [JsonStringEnumMemberName("card")]
    Card = 1,

    [JsonStringEnumMemberName("bankTransfer")]
    BankTransfer,

    [JsonStringEnumMemberName("pix")]
    Pix,

    [JsonStringEnumMemberName("boleto")]
    Boleto,
}
