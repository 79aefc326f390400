using Envio.Contracts.Orders;
using Envio.Tests.Support;

namespace Envio.Tests.Contracts;

/// <summary>Each validation rule, alone: a valid order with one thing wrong gets exactly that error.</summary>
public sealed class OrderValidatorTests
{
    private static readonly Order Valid = SampleOrders.Create(42);

    // The total follows the item where it can, and stays a valid amount where the item is broken.
    private static Order WithItem(OrderItem item) => Valid with
    {
        Items = [item],
        Total = Math.Round(Math.Clamp(item.Quantity * item.UnitPrice, 0m, OrderValidator.MaxAmount), OrderValidator.MaxDecimalPlaces),
    };

    public static TheoryData<string, Order> Invalid() => new()
    {
        { "orderId", Valid with { OrderId = Guid.Empty } },
        { "customer", Valid with { Customer = null! } },
        { "customer.name", Valid with { Customer = Valid.Customer with { Name = " " } } },
        { "customer.name", Valid with { Customer = Valid.Customer with { Name = new string('n', OrderValidator.MaxNameLength + 1) } } },
        { "customer.name", Valid with { Customer = Valid.Customer with { Name = "Ana\u0000" } } },
        { "customer.name", Valid with { Customer = Valid.Customer with { Name = "Ana\u001fSouza" } } },
        { "customer.document", Valid with { Customer = Valid.Customer with { Document = "123\u007f" } } },
        { "customer.document", Valid with { Customer = Valid.Customer with { Document = "\u009f123" } } },
        { "items[0].sku", WithItem(new() { Sku = "A\u0085B", Quantity = 1, UnitPrice = 1m }) },
        { "customer.email", Valid with { Customer = Valid.Customer with { Email = null! } } },
        { "customer.email", Valid with { Customer = Valid.Customer with { Email = "ana@" } } },
        { "customer.email", Valid with { Customer = Valid.Customer with { Email = "Ana <ana@example.com>" } } },
        { "customer.email", Valid with { Customer = Valid.Customer with { Email = new string('a', 250) + "@x.io" } } },
        { "customer.document", Valid with { Customer = Valid.Customer with { Document = "" } } },
        { "customer.document", Valid with { Customer = Valid.Customer with { Document = new string('9', OrderValidator.MaxDocumentLength + 1) } } },
        { "currency", Valid with { Currency = null! } },
        { "currency", Valid with { Currency = "eur" } },
        { "currency", Valid with { Currency = "EURO" } },
        { "currency", Valid with { Currency = "XYZ" } },
        { "items", Valid with { Items = [] } },
        { "items", Valid with { Items = null! } },
        { "items", Valid with { Items = Enumerable.Repeat(Valid.Items[0], OrderValidator.MaxItems + 1).ToList() } },
        { "items[0]", Valid with { Items = [null!] } },
        { "items[0].sku", WithItem(new() { Sku = "", Quantity = 1, UnitPrice = 1m }) },
        { "items[0].sku", WithItem(new() { Sku = new string('s', OrderValidator.MaxSkuLength + 1), Quantity = 1, UnitPrice = 1m }) },
        { "items[0].quantity", WithItem(new() { Sku = "A", Quantity = 0, UnitPrice = 1m }) },
        { "items[0].quantity", WithItem(new() { Sku = "A", Quantity = -3, UnitPrice = 1m }) },
        { "items[0].quantity", WithItem(new() { Sku = "A", Quantity = OrderValidator.MaxQuantity + 1, UnitPrice = 1m }) },
        { "items[0].unitPrice", WithItem(new() { Sku = "A", Quantity = 1, UnitPrice = -0.01m }) },
        { "items[0].unitPrice", WithItem(new() { Sku = "A", Quantity = 1, UnitPrice = 0.00001m }) },
        { "items[0].unitPrice", WithItem(new() { Sku = "A", Quantity = 1, UnitPrice = OrderValidator.MaxAmount + 1 }) },
        { "total", Valid with { Total = Valid.Total + 0.01m } },
        { "total", Valid with { Total = -1m } },
        { "createdAt", Valid with { CreatedAt = default } },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void One_broken_rule_gives_one_field_error(string field, Order order)
    {
        var errors = OrderValidator.Validate(order);
        Assert.Equal([field], errors.Keys);
    }

    [Fact]
    public void A_valid_order_has_no_errors() => Assert.Empty(OrderValidator.Validate(Valid));

    [Fact]
    public void Zero_priced_items_and_totals_are_valid() =>
        Assert.Empty(OrderValidator.Validate(WithItem(new() { Sku = "FREE", Quantity = 2, UnitPrice = 0m })));

    [Fact]
    public void Trailing_zeros_beyond_four_places_are_not_extra_precision() =>
        Assert.Empty(OrderValidator.Validate(WithItem(new() { Sku = "A", Quantity = 1, UnitPrice = 1.500000m })));

    [Fact]
    public void Errors_are_prefixed_with_the_orders_place_in_a_batch() =>
        Assert.Equal(["[3].total"], OrderValidator.Validate(Valid with { Total = 0.5m }, "[3]").Keys);

    // Next to the control characters on both sides: U+001F and U+007F–U+009F are refused above, these are text.
    [Fact]
    public void Text_next_to_the_control_characters_is_valid() =>
        Assert.Empty(OrderValidator.Validate(Valid with { Customer = Valid.Customer with { Name = "José\u00a0Souza ~ \u0020" } }));

    [Fact]
    public void An_items_errors_name_its_index_within_the_orders_place() =>
        Assert.Equal(["[3].items[2].sku", "[3].items[2].quantity"], OrderValidator.Validate(
            Valid with { Items = [Valid.Items[0], Valid.Items[0], new() { Sku = "", Quantity = 0, UnitPrice = 1m }] }, "[3]").Keys);

    [Fact]
    public void A_missing_order_is_one_error() => Assert.Single(OrderValidator.Validate(null));
}
