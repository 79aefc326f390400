using Envio.ConsumerService.Messaging;

namespace Envio.Tests.Messaging;

/// <summary>
/// The sentences real servers answer with, as the error headers keep them: the reason and the names it gives stay,
/// the values it quotes go (SQL Server's texts are taken from its error catalogue; SqlException cannot be built here).
/// </summary>
public sealed class FailureTextTests
{
    [Theory]
    [InlineData(
        "String or binary data would be truncated in table 'envio.dbo.order_items', column 'sku'. Truncated value: 'SKU-PRIVATE'.",
        "String or binary data would be truncated in table 'envio.dbo.order_items', column 'sku'. Truncated value: ….")]
    [InlineData(
        "Conversion failed when converting the nvarchar value 'jane@example.com' to data type int.",
        "Conversion failed when converting the nvarchar value … to data type int.")]
    [InlineData(
        "Violation of PRIMARY KEY constraint 'pk_orders'. Cannot insert duplicate key in object 'dbo.orders'. The duplicate key value is (7, 'O''Brien').",
        "Violation of PRIMARY KEY constraint 'pk_orders'. Cannot insert duplicate key in object 'dbo.orders'. The duplicate key value is ….")]
    [InlineData("invalid input syntax for type integer: \"12ab\"", "invalid input syntax for type integer: …")]
    [InlineData("value \"99999999999\" is out of range for type integer", "value … is out of range for type integer")]
    [InlineData("invalid byte sequence for encoding \"UTF8\": 0x00", "invalid byte sequence for encoding \"UTF8\": …")]
    [InlineData(
        "new row for relation \"order_items\" violates check constraint \"order_items_quantity_check\"",
        "new row for relation \"order_items\" violates check constraint \"order_items_quantity_check\"")]
    [InlineData(
        "duplicate key value violates unique constraint \"orders_pkey\"",
        "duplicate key value violates unique constraint \"orders_pkey\"")]
    public void Values_a_server_quotes_are_redacted_and_the_names_stay(string message, string kept) =>
        Assert.Equal(kept, FailureText.Redact(message));

    [Fact]
    public void Only_the_first_line_of_an_exception_is_kept_and_never_its_stack_trace()
    {
        Exception thrown;
        try
        {
            throw new InvalidOperationException("The writer gave up.\nDETAIL: Failing row contains (SKU-PRIVATE, 0).");
        }
        catch (InvalidOperationException e)
        {
            thrown = new AggregateException("Writing failed.", e);
        }

        var kept = FailureText.WithType(thrown);

        Assert.Equal("System.AggregateException: Writing failed. (The writer gave up.", kept);
        Assert.DoesNotContain("SKU-PRIVATE", kept, StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", kept, StringComparison.Ordinal);
    }

    [Fact]
    public void A_long_reason_is_cut_to_what_a_header_keeps()
    {
        var kept = FailureText.Of(new InvalidOperationException(new string('x', 5_000)));

        Assert.Equal(FailureText.MaxLength, kept.Length);
        Assert.EndsWith(FailureText.Redacted, kept, StringComparison.Ordinal);
    }
}
