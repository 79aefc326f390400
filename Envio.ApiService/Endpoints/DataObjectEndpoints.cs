using System.Diagnostics;
using System.Globalization;
using Envio.ApiService.Messaging;
using Envio.ApiService.Security;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// Every registered type's endpoints: <c>POST /api/{plural}</c> for one object and <c>POST /api/{plural}/batch</c> for
/// up to <see cref="MaxBatchSize"/>, each answering 202 once the broker confirmed every object of the request, never before.
/// </summary>
public static class DataObjectEndpoints
{
    public const int MaxBatchSize = 1_000;
    public const string CorrelationHeader = "X-Correlation-Id";

    public static IEndpointRouteBuilder MapDataObjectEndpoints(this IEndpointRouteBuilder app)
    {
        foreach (var type in DataObjectTypes.Registered)
        {
            type.Accept(new Routes(app));
        }
        return app;
    }

    /// <summary>A type's name as a sentence says it: <c>credit-note</c> → <c>credit note</c>.</summary>
    internal static string Words(string name) => name.Replace('-', ' ');

    /// <summary><c>an order</c>, <c>a payment</c>.</summary>
    internal static string WithArticle(string words) => (words[0] is 'a' or 'e' or 'i' or 'o' or 'u' ? "an " : "a ") + words;

    private sealed class Routes(IEndpointRouteBuilder app) : IDataObjectTypeVisitor<RouteGroupBuilder>
    {
        public RouteGroupBuilder Visit<T>(DataObjectType<T> type) where T : class
        {
            var endpoints = new TypeEndpoints<T>(type);
            var (name, plural) = (Words(type.Name), Words(type.Plural));
            var group = app.MapGroup($"/api/{type.Plural}").WithTags(char.ToUpperInvariant(plural[0]) + plural[1..])
                .WithMetadata(type)
                .RequireAuthorization(Scopes.SendPolicyOf(type))
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

            group.MapPost("/", endpoints.AcceptOneAsync)
                .WithName($"Post{type.PascalName}")
                .WithSummary($"Accept one {name}")
                .WithDescription($"Validates the {name} and publishes it to the broker. 202 means the broker confirmed it " +
                    $"(it is durable and will be stored exactly once); retrying with the same {type.CamelName}Id is harmless.")
                .Accepts<T>("application/json")
                .Produces(StatusCodes.Status202Accepted, contentType: "application/json");

            group.MapPost("/batch", endpoints.AcceptBatchAsync)
                .WithName($"Post{type.PascalName}Batch")
                .WithSummary($"Accept up to {MaxBatchSize} {plural}")
                .WithDescription($"Validates every {name} (all or nothing) and publishes them together. 202 means the broker " +
                    $"confirmed all of them; 503 means the batch must be retried as a whole ({plural} already confirmed are " +
                    $"absorbed by their {type.CamelName}Id).")
                .Accepts<List<T>>("application/json")
                .Produces(StatusCodes.Status202Accepted, contentType: "application/json");

            return group;
        }
    }
}

/// <summary>
/// One type's two endpoints: read the body (hostile input, see <see cref="RequestBody"/>), fill in what a client may
/// leave out, validate every object, publish them all, and answer with their ids: 202, 400 with every error keyed by
/// its JSON path, or 503 with Retry-After and the ids to retry with.
/// </summary>
internal sealed class TypeEndpoints<T>(DataObjectType<T> type) where T : class
{
    private readonly string _name = DataObjectEndpoints.Words(type.Name);
    private readonly string _plural = DataObjectEndpoints.Words(type.Plural);
    private readonly int _maxArrayLength = type.Members.Where(m => m.Kind == MemberKind.Collection).Max(m => m.MaxLength) ?? DataObjectEndpoints.MaxBatchSize;

    public async Task<IResult> AcceptOneAsync(
        HttpContext context, IOptions<PublisherOptions> options, IOptions<ApiOptions> api, IOptions<TopologyOptions> topology,
        TimeProvider clock)
    {
        var limits = api.Value.LimitsOf(type);
        var article = DataObjectEndpoints.WithArticle(_name);
        var (value, problem) = await RequestBody.ReadJsonAsync(context, type.Json, limits.Body, limits.BodySetting, _maxArrayLength,
            $"{char.ToUpperInvariant(article[0])}{article[1..]} is a JSON object.", api.Value.BodyReadTimeout);
        if (problem is not null)
        {
            return problem;
        }
        return await AcceptAsync(context, [value], path: null, options.Value, topology.Value.NamesOf(type), api.Value.SchemaVersionOf(type), clock);
    }

    public async Task<IResult> AcceptBatchAsync(
        HttpContext context, IOptions<PublisherOptions> options, IOptions<ApiOptions> api, IOptions<TopologyOptions> topology,
        TimeProvider clock)
    {
        var limits = api.Value.LimitsOf(type);
        var batchSizeError = $"A batch holds between 1 and {DataObjectEndpoints.MaxBatchSize} {_plural}.";
        // The batch's own array holds at most MaxBatchSize; an object's collections what the type allows.
        var (values, problem) = await RequestBody.ReadJsonAsync(context, type.List, limits.Batch, limits.BatchSetting,
            Math.Max(DataObjectEndpoints.MaxBatchSize, _maxArrayLength), batchSizeError, api.Value.BodyReadTimeout);
        if (problem is not null)
        {
            return problem;
        }
        if (values is null || values.Count == 0 || values.Count > DataObjectEndpoints.MaxBatchSize)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["$"] = [batchSizeError] }, title: "The batch is not valid.");
        }
        if (ClientRateLimiting.ChargeBatch(context, values.Count) is { } tooMany)
        {
            return tooMany;
        }
        return await AcceptAsync(context, values, path: i => $"[{i}]", options.Value, topology.Value.NamesOf(type), api.Value.SchemaVersionOf(type), clock);
    }

    private async Task<IResult> AcceptAsync(
        HttpContext context, IReadOnlyList<T?> received, Func<int, string>? path, PublisherOptions options, QueueNames names,
        int version, TimeProvider clock)
    {
        // Microseconds: what every store keeps, so a stored creation time equals the one the API assigned.
        var now = clock.GetUtcNow();
        now = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMicrosecond));
        // The client travels with every message, so the consumer can tell another client's object under a taken id
        // from a retry (the policy requires a token, which names one).
        var clientId = ClientIdentity.Of(context.User)?.Value;
        if (clientId is { Length: > Envelope.MaxClientIdLength })
        {
            return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "The token's client id is too long.",
                detail: $"Envio stores client ids (client_id, azp or sub) of at most {Envelope.MaxClientIdLength} characters.");
        }

        // A missing id becomes a new UUIDv7 and a missing creation time now; a given id is kept, so that a client's
        // retry is absorbed downstream.
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        for (var i = 0; i < received.Count; i++)
        {
            if (received[i] is { } value)
            {
                type.FillIn(value, now);
            }
            type.Validate(received[i], path?.Invoke(i) ?? "", errors);
        }
        var correlationId = CorrelationId(context);
        var ids = received.Where(value => value is not null).Select(value => type.IdOf(value!)).ToArray();
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(
                errors.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal),
                title: received.Count == 1 ? $"The {_name} is not valid." : "The batch is not valid; nothing was accepted.");
        }

        var messages = new List<(Envelope Envelope, byte[] Json)>(received.Count);
        foreach (var value in received)
        {
            messages.Add((new Envelope(type.IdOf(value!), type.WireType, version, now, correlationId, clientId), type.Serialize(value!, version)));
        }
        try
        {
            // Resolved here, not bound as a parameter: an API that cannot connect to the broker fails making the
            // publisher (its connection is made then), and that 503 too must name the ids it assigned.
            var publisher = context.RequestServices.GetRequiredService<MessagePublisher>();
            await publisher.PublishAsync(names, messages, context.RequestAborted);
        }
        catch (PublishFailedException e)
        {
            return Unavailable(context, options, $"The {_plural} could not be handed to the broker; nothing is guaranteed to be accepted.",
                $"{e.Message} Retry later with the same {type.IdsName}: {_plural} that did arrive are not stored twice.", ids);
        }
        catch (Exception e) when (BrokerFailures.IsUnreachableWithin(e))
        {
            return Unavailable(context, options, "The broker is unavailable.",
                $"The broker is unreachable. Retry later with the same {type.IdsName}: nothing was accepted.", ids);
        }

        return Results.Json(new Dictionary<string, Guid[]> { [type.IdsName] = ids }, statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary>
    /// 503 with Retry-After and the ids, those the API assigned included: some of these messages may still arrive (a
    /// confirm that timed out is not a message lost), so a retry must carry the same ids to be absorbed, never new ones.
    /// </summary>
    private IResult Unavailable(HttpContext context, PublisherOptions options, string title, string detail, Guid[] ids)
    {
        context.Response.Headers.RetryAfter = ((int)Math.Ceiling(options.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        return Results.Problem(
            statusCode: StatusCodes.Status503ServiceUnavailable,
            title: title,
            detail: detail,
            extensions: new Dictionary<string, object?> { [type.IdsName] = ids });
    }

    private static string CorrelationId(HttpContext context) =>
        context.Request.Headers[DataObjectEndpoints.CorrelationHeader] is [{ Length: > 0 and <= 128 } given] ? given
        : Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier;
}
