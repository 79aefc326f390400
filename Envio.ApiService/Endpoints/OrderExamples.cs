using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Envio.ApiService.Endpoints;

/// <summary>Request examples for the interactive API reference: a valid order can be sent as it is.</summary>
internal sealed class OrderExamples : IOpenApiOperationTransformer
{
    private static JsonObject Order() => new()
    {
        ["orderId"] = "0193a6a0-7b1c-7cc2-9d51-3f1e2a4b5c6d",
        ["customer"] = new JsonObject
        {
            ["name"] = "Ana Souza",
            ["email"] = "ana.souza@example.com",
            ["document"] = "123.456.789-09",
        },
        ["currency"] = "BRL",
        ["items"] = new JsonArray(
            new JsonObject { ["sku"] = "BOOK-001", ["quantity"] = 2, ["unitPrice"] = 39.90m },
            new JsonObject { ["sku"] = "PEN-042", ["quantity"] = 3, ["unitPrice"] = 4.50m }),
        ["total"] = 93.30m,
        ["createdAt"] = "2026-11-27T10:15:00Z",
    };

    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        JsonNode? example = operation.OperationId switch
        {
            "PostOrder" => Order(),
            "PostOrderBatch" => new JsonArray(Order(), Order().Also(o => o["orderId"] = "0193a6a0-7b1c-7cc2-9d51-3f1e2a4b5c6e")),
            _ => null,
        };
        if (example is not null && operation.RequestBody?.Content?.TryGetValue("application/json", out var media) == true)
        {
            media.Example = example;
        }
        return Task.CompletedTask;
    }
}

internal static class JsonNodeExtensions
{
    public static JsonObject Also(this JsonObject node, Action<JsonObject> change)
    {
        change(node);
        return node;
    }
}
