using Envio.Contracts.DataObjects;

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
        // Keys and messages are made only for what fails: for a valid order only the email check allocates (the API
        // validates a thousand orders per batch request, and the consumer every message again).
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
            if (TextProblem(order.Customer.Name, MaxNameLength) is { } nameProblem)
            {
                Fail("customer.name", nameProblem);
            }
            if (TextProblem(order.Customer.Email, MaxEmailLength) is { } emailProblem)
            {
                Fail("customer.email", emailProblem);
            }
            else if (!TextChecks.IsEmail(order.Customer.Email))
            {
                Fail("customer.email", "The email address is not valid.");
            }
            if (TextProblem(order.Customer.Document, MaxDocumentLength) is { } documentProblem)
            {
                Fail("customer.document", documentProblem);
            }
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
                if (item is null)
                {
                    Fail($"items[{i}]", "The item is required.");
                    sum = null;
                    continue;
                }
                if (TextProblem(item.Sku, MaxSkuLength) is { } skuProblem)
                {
                    Fail($"items[{i}].sku", skuProblem);
                }
                var quantityValid = item.Quantity is > 0 and <= MaxQuantity;
                if (!quantityValid)
                {
                    Fail($"items[{i}].quantity", $"The quantity must be greater than 0 and at most {MaxQuantity}.");
                }
                var priceProblem = AmountProblem(item.UnitPrice, "unit price");
                if (priceProblem is not null)
                {
                    Fail($"items[{i}].unitPrice", priceProblem);
                }
                sum = quantityValid && priceProblem is null && sum is { } s && s + item.Quantity * item.UnitPrice <= MaxAmount
                    ? s + item.Quantity * item.UnitPrice
                    : null;
            }
        }

        if (AmountProblem(order.Total, "total") is { } totalProblem)
        {
            Fail("total", totalProblem);
        }
        else if (sum is { } expected && order.Total != expected)
        {
            Fail("total", $"The total must equal the sum of quantity × unit price over the items ({expected}).");
        }

        if (order.CreatedAt == default)
        {
            Fail("createdAt", "The creation time is required.");
        }
    }

    /// <summary>What is wrong with a required text, or null when nothing is.</summary>
    private static string? TextProblem(string? value, int maxLength) =>
        string.IsNullOrWhiteSpace(value) ? "The value is required."
        : value.Length > maxLength ? $"The value must be at most {maxLength} characters long."
        : TextChecks.HasControlCharacters(value) ? "The value must not contain control characters."
        : null;

    /// <summary>What is wrong with an amount, or null when nothing is.</summary>
    private static string? AmountProblem(decimal amount, string name) =>
        amount < 0 ? $"The {name} must not be negative."
        : amount > MaxAmount ? $"The {name} must be at most {MaxAmount}."
        : amount.Scale > MaxDecimalPlaces && decimal.Round(amount, MaxDecimalPlaces) != amount ? $"The {name} has at most {MaxDecimalPlaces} decimal places."
        : null;

}
