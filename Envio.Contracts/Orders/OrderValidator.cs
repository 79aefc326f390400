using System.Net.Mail;

namespace Envio.Contracts.Orders;

/// <summary>
/// Every rule an order must meet, checked in full so that a client sees all its mistakes at once. The API runs it
/// before publishing; the consumer runs it again, because a queue can be written by more than one producer.
/// </summary>
public static class OrderValidator
{
    public const int MaxItems = 1_000;
    public const int MaxNameLength = 200;
    public const int MaxEmailLength = 254;
    public const int MaxDocumentLength = 50;
    public const int MaxSkuLength = 64;
    public const int MaxQuantity = 1_000_000;
    public const int MaxDecimalPlaces = 4;
    /// <summary>Fits the stores' <c>decimal(19,4)</c> columns.</summary>
    public const decimal MaxAmount = 999_999_999_999_999m;

    /// <summary>Field errors keyed by JSON path (<c>customer.email</c>, <c>items[2].quantity</c>); empty when valid.</summary>
    public static Dictionary<string, string[]> Validate(Order? order, string path = "")
    {
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        Validate(order, path, errors);
        return errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);
    }

    public static void Validate(Order? order, string path, Dictionary<string, List<string>> errors)
    {
        void Fail(string field, string message)
        {
            var key = path.Length == 0 ? field : field.Length == 0 ? path : $"{path}.{field}";
            if (!errors.TryGetValue(key, out var list))
            {
                errors[key] = list = [];
            }
            list.Add(message);
        }

        if (order is null)
        {
            Fail("", "An order is required.");
            return;
        }

        // The API fills in a missing id and creation time before validating; on the queue both must be there.
        if (order.OrderId == Guid.Empty)
        {
            Fail("orderId", "The order id is required.");
        }

        if (order.Customer is null)
        {
            Fail("customer", "The customer is required.");
        }
        else
        {
            RequireText(order.Customer.Name, "customer.name", MaxNameLength, Fail);
            if (RequireText(order.Customer.Email, "customer.email", MaxEmailLength, Fail) && !IsEmail(order.Customer.Email))
            {
                Fail("customer.email", "The email address is not valid.");
            }
            RequireText(order.Customer.Document, "customer.document", MaxDocumentLength, Fail);
        }

        if (string.IsNullOrEmpty(order.Currency))
        {
            Fail("currency", "The currency is required.");
        }
        else if (!Iso4217.IsCurrency(order.Currency))
        {
            Fail("currency", "The currency must be an ISO 4217 code in upper case, such as EUR or USD.");
        }

        decimal? sum = 0m;
        if (order.Items is null || order.Items.Count == 0)
        {
            Fail("items", "At least one item is required.");
            sum = null;
        }
        else if (order.Items.Count > MaxItems)
        {
            Fail("items", $"An order has at most {MaxItems} items.");
            sum = null;
        }
        else
        {
            for (var i = 0; i < order.Items.Count; i++)
            {
                var item = order.Items[i];
                var itemPath = $"items[{i}]";
                if (item is null)
                {
                    Fail(itemPath, "The item is required.");
                    sum = null;
                    continue;
                }
                RequireText(item.Sku, $"{itemPath}.sku", MaxSkuLength, Fail);
                var quantityValid = item.Quantity is > 0 and <= MaxQuantity;
                if (!quantityValid)
                {
                    Fail($"{itemPath}.quantity", $"The quantity must be greater than 0 and at most {MaxQuantity}.");
                }
                var priceValid = CheckAmount(item.UnitPrice, $"{itemPath}.unitPrice", "unit price", Fail);
                sum = quantityValid && priceValid && sum is { } s && s + item.Quantity * item.UnitPrice <= MaxAmount
                    ? s + item.Quantity * item.UnitPrice
                    : null;
            }
        }

        if (CheckAmount(order.Total, "total", "total", Fail) && sum is { } expected && order.Total != expected)
        {
            Fail("total", $"The total must equal the sum of quantity × unit price over the items ({expected}).");
        }

        if (order.CreatedAt == default)
        {
            Fail("createdAt", "The creation time is required.");
        }
    }

    private static bool RequireText(string? value, string field, int maxLength, Action<string, string> fail)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            fail(field, "The value is required.");
            return false;
        }
        if (value.Length > maxLength)
        {
            fail(field, $"The value must be at most {maxLength} characters long.");
            return false;
        }
        if (value.Any(char.IsControl))
        {
            fail(field, "The value must not contain control characters.");
            return false;
        }
        return true;
    }

    private static bool CheckAmount(decimal amount, string field, string name, Action<string, string> fail)
    {
        if (amount < 0)
        {
            fail(field, $"The {name} must not be negative.");
            return false;
        }
        if (amount > MaxAmount)
        {
            fail(field, $"The {name} must be at most {MaxAmount}.");
            return false;
        }
        if (amount.Scale > MaxDecimalPlaces && decimal.Round(amount, MaxDecimalPlaces) != amount)
        {
            fail(field, $"The {name} has at most {MaxDecimalPlaces} decimal places.");
            return false;
        }
        return true;
    }

    private static bool IsEmail(string value) =>
        MailAddress.TryCreate(value, out var address) && address.Address == value && value.Contains('.', StringComparison.Ordinal);
}
