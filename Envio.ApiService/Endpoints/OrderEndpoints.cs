using System.Diagnostics;
using Envio.ApiService.Messaging;
using Envio.ApiService.Security;
using Envio.Contracts.Messaging;
using Envio.Contracts.Orders;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Endpoints;

/// <summary>The orders the API accepts: 202 once the broker confirmed every one of them, never before.</summary>
public sealed record AcceptedOrders(IReadOnlyList<Guid> OrderIds);

public static class OrderEndpoints
{
    public const int MaxBatchSize = 1_000;
    public const string CorrelationHeader = "X-Correlation-Id";
    private static readonly string BatchSizeError = $"A batch holds between 1 and {MaxBatchSize} orders.";

    public static IEndpointRouteBuilder MapOrderEndpoints(this IEndpointRouteBuilder app)
    {
        var orders = app.MapGroup("/api/orders").WithTags("Orders")
            .RequireAuthorization(Scopes.Send)
            .RequireRateLimiting(ClientRateLimiting.PolicyName)
            // What both endpoints may answer besides 202.
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status408RequestTimeout)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        orders.MapPost("/", AcceptOrderAsync)
            .WithName("PostOrder")
            .WithSummary("Accept one order")
            .WithDescription("Validates the order and publishes it to the broker. 202 means the broker confirmed it " +
                "(it is durable and will be stored exactly once); retrying with the same orderId is harmless.")
            .Accepts<Order>("application/json")
            .Produces<AcceptedOrders>(StatusCodes.Status202Accepted);

        orders.MapPost("/batch", AcceptBatchAsync)
            .WithName("PostOrderBatch")
            .WithSummary($"Accept up to {MaxBatchSize} orders")
            .WithDescription("Validates every order (all or nothing) and publishes them together. 202 means the broker " +
                "confirmed all of them; 503 means the batch must be retried as a whole (orders already confirmed are " +
                "absorbed by their orderId).")
            .Accepts<List<Order>>("application/json")
            .Produces<AcceptedOrders>(StatusCodes.Status202Accepted);

        return app;
    }

    private static async Task<IResult> AcceptOrderAsync(
        HttpContext context, OrderPublisher publisher, IOptions<PublisherOptions> options, IOptions<ApiOptions> limits, TimeProvider clock)
    {
        var (order, problem) = await RequestBody.ReadJsonAsync(context, WireFormat.Order,
            limits.Value.MaxOrderBodyBytes, $"{ApiOptions.SectionName}:{nameof(ApiOptions.MaxOrderBodyBytes)}", OrderValidator.MaxItems, "An order is a JSON object.",
            limits.Value.BodyReadTimeout);
        if (problem is not null)
        {
            return problem;
        }
        return await AcceptAsync(context, [order], path: null, publisher, options.Value, clock);
    }

    private static async Task<IResult> AcceptBatchAsync(
        HttpContext context, OrderPublisher publisher, IOptions<PublisherOptions> options, IOptions<ApiOptions> limits, TimeProvider clock)
    {
        var (orders, problem) = await RequestBody.ReadJsonAsync(context, WireFormat.OrderList,
            limits.Value.MaxBatchBodyBytes, $"{ApiOptions.SectionName}:{nameof(ApiOptions.MaxBatchBodyBytes)}", MaxBatchSize, BatchSizeError,
            limits.Value.BodyReadTimeout);
        if (problem is not null)
        {
            return problem;
        }
        if (orders is null || orders.Count == 0 || orders.Count > MaxBatchSize)
        {
            return Results.ValidationProblem(
                new Dictionary<string, string[]> { ["$"] = [BatchSizeError] },
                title: "The batch is not valid.");
        }
        return await AcceptAsync(context, orders, path: i => $"[{i}]", publisher, options.Value, clock);
    }

    private static async Task<IResult> AcceptAsync(
        HttpContext context, IReadOnlyList<Order?> received, Func<int, string>? path,
        OrderPublisher publisher, PublisherOptions options, TimeProvider clock)
    {
        // Microseconds: what every store keeps, so a stored creation time equals the one the API assigned.
        var now = clock.GetUtcNow();
        now = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMicrosecond));
        var correlationId = CorrelationId(context);
        // The client travels with every message, so the consumer can tell another client's order under a taken id
        // from a retry (the policy requires a token, which names one).
        var clientId = ClientIdentity.Of(context.User)?.Value;
        if (clientId is { Length: > Envelope.MaxClientIdLength })
        {
            return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "The token's client id is too long.",
                detail: $"Envio stores client ids (client_id, azp or sub) of at most {Envelope.MaxClientIdLength} characters.");
        }
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var messages = new List<(Envelope Envelope, Order Order)>(received.Count);
        for (var i = 0; i < received.Count; i++)
        {
            // A missing id becomes a new UUIDv7 (time-ordered: friendly to the orders table's index);
            // a given one is kept, so that a client's retry is absorbed downstream.
            var order = received[i] is { } r
                ? r with
                {
                    OrderId = r.OrderId == Guid.Empty ? Guid.CreateVersion7(now) : r.OrderId,
                    CreatedAt = r.CreatedAt == default ? now : r.CreatedAt,
                }
                : null;
            OrderValidator.Validate(order, path?.Invoke(i) ?? "", errors);
            if (order is not null)
            {
                messages.Add((new Envelope(order.OrderId, WireFormat.OrderType, WireFormat.OrderSchemaVersion, now, correlationId, clientId), order));
            }
        }

        if (errors.Count > 0)
        {
            return Results.ValidationProblem(
                errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal),
                title: received.Count == 1 ? "The order is not valid." : "The batch is not valid; nothing was accepted.");
        }

        try
        {
            await publisher.PublishAsync(messages, context.RequestAborted);
        }
        catch (PublishFailedException e)
        {
            context.Response.Headers.RetryAfter = ((int)Math.Ceiling(options.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            // The ids, those the API assigned included: some of these messages may still arrive (a confirm that timed
            // out is not a message lost), so a retry must carry the same ids to be absorbed, never new ones.
            return Results.Problem(
                statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "The orders could not be handed to the broker; nothing is guaranteed to be accepted.",
                detail: $"{e.Message} Retry later with the same orderIds: orders that did arrive are not stored twice.",
                extensions: new Dictionary<string, object?> { ["orderIds"] = OrderIds(messages) });
        }

        return Results.Accepted(value: new AcceptedOrders(OrderIds(messages)));
    }

    private static Guid[] OrderIds(List<(Envelope Envelope, Order Order)> messages) => [.. messages.Select(m => m.Envelope.MessageId)];

    private static string CorrelationId(HttpContext context) =>
        context.Request.Headers[CorrelationHeader] is [{ Length: > 0 and <= 128 } given] ? given
        : Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier;
}
