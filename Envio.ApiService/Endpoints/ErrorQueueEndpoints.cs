using Envio.ApiService.Messaging;
using System.ComponentModel;
using Envio.ApiService.Security;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Envio.Messaging;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// Which error-queue messages to replay: those with the listed ids (every copy of each), those with the listed handles
/// (the listing's <c>handle</c>: for messages without an id, or one copy of several), both, or all of them.
/// </summary>
public sealed record ReplayRequest(IReadOnlyList<string>? MessageIds, bool All = false, IReadOnlyList<string>? Handles = null);

/// <summary>
/// For operators: read why messages failed, replay them once the cause is fixed, or discard them, one type's error
/// queue at a time (<c>?type=payment</c>; without it, the order's, as before there were other types).
/// </summary>
public static partial class ErrorQueueEndpoints
{
    public const int MaxPageSize = 500;

    /// <summary>What the <c>type</c> parameter of every admin endpoint means.</summary>
    internal const string TypeParameter =
        "The type of data object (order, payment, …): its error queue, and the work queue a replay goes back to. Without it, the order's.";

    public static IEndpointRouteBuilder MapErrorQueueEndpoints(this IEndpointRouteBuilder app)
    {
        var errors = app.MapGroup("/admin/errors").WithTags("Error queue")
            .RequireAuthorization(Scopes.Admin)
            .RequireRateLimiting(ClientRateLimiting.PolicyName)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);

        errors.MapGet("/", ListAsync)
            .WithName("ListFailedMessages")
            .WithSummary("List the error queue, with the reason each message failed")
            .WithDescription("Pages through the error queue without removing anything.")
            .Produces<FailedMessagePage>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        errors.MapPost("/replay", ReplayAsync)
            .WithName("ReplayFailedMessages")
            .WithSummary("Send failed messages back to the work queue")
            .WithDescription("Replays the messages with the given ids (every copy of each) and handles (or all, with \"all\": true) " +
                "with their original ids, so orders already stored are not stored twice. Each is confirmed by the broker before it " +
                "leaves the error queue. By ids or handles, the whole queue is looked through; what it did not hold is in notFound.")
            .Produces<ReplayOutcome>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        errors.MapDelete("/{messageId}", DiscardAsync)
            .WithName("DiscardFailedMessage")
            .WithSummary("Discard one failed message for good (audited)")
            .WithDescription("Discards the first message with this id; of two copies, one. To choose the copy, or a message without an id, discard by handle.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        errors.MapDelete("/handles/{handle}", DiscardByHandleAsync)
            .WithName("DiscardFailedMessageByHandle")
            .WithSummary("Discard one failed message, named by its handle, for good (audited)")
            .WithDescription("The handle is the listing's: it names a message without an id, or one of two copies of an id. " +
                "Of two copies alike in everything (one handle), one is discarded and the other stays.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return app;
    }

    private static Task<IResult> ListAsync(
        FailedMessages queue, HttpContext context, IOptions<TopologyOptions> topology, int offset = 0, int limit = 50, [Description(TypeParameter)] string? type = null)
    {
        if (TypeOf(type) is not { } chosen)
        {
            return Task.FromResult(UnknownType(type!));
        }
        if (offset < 0 || limit is < 1 or > MaxPageSize)
        {
            return Task.FromResult(Results.ValidationProblem(new Dictionary<string, string[]>
            {
                ["offset"] = [$"offset ≥ 0 and 1 ≤ limit ≤ {MaxPageSize}."],
            }));
        }
        return BrokerCallAsync(context, async () => Results.Ok(await queue.ListAsync(topology.Value.NamesOf(chosen), offset, limit, context.RequestAborted)));
    }

    private static Task<IResult> ReplayAsync(
        FailedMessages queue, HttpContext context, IOptions<TopologyOptions> topology, ReplayRequest request, [Description(TypeParameter)] string? type = null)
    {
        if (TypeOf(type) is not { } chosen)
        {
            return Task.FromResult(UnknownType(type!));
        }
        var requested = (request.MessageIds?.Count ?? 0) + (request.Handles?.Count ?? 0);
        if (request.All == requested > 0)
        {
            return Task.FromResult(Results.ValidationProblem(new Dictionary<string, string[]>
            {
                ["messageIds"] = ["Give messageIds or handles (or both), or \"all\": true."],
            }));
        }
        if (requested > MaxPageSize)
        {
            // Each call looks through the queue: an unbounded list is an unbounded amount of work per call.
            return Task.FromResult(Results.ValidationProblem(new Dictionary<string, string[]>
            {
                ["messageIds"] = [$"At most {MaxPageSize} ids per call, handles included (this one has {requested}); replay the rest in further calls."],
            }));
        }
        if (request.Handles?.FirstOrDefault(h => !FailedMessageHandle.IsWellFormed(h)) is { } malformed)
        {
            return Task.FromResult(MalformedHandle("handles", malformed));
        }
        var selection = request.All
            ? FailedMessageSelection.All
            : new FailedMessageSelection(
                request.MessageIds is { Count: > 0 } ids ? ids.ToHashSet(StringComparer.Ordinal) : null,
                request.Handles is { Count: > 0 } handles ? handles.ToHashSet(StringComparer.Ordinal) : null);
        return BrokerCallAsync(context, async () => Results.Ok(await queue.ReplayAsync(topology.Value.NamesOf(chosen), selection, OperatorOf(context), context.RequestAborted)));
    }

    private static Task<IResult> DiscardAsync(
        FailedMessages queue, HttpContext context, IOptions<TopologyOptions> topology, string messageId, [Description(TypeParameter)] string? type = null)
    {
        if (TypeOf(type) is not { } chosen)
        {
            return Task.FromResult(UnknownType(type!));
        }
        return DiscardOneAsync(queue, context, topology.Value.NamesOf(chosen), FailedMessageSelection.ById(messageId), $"No message {messageId} in the error queue.");
    }

    private static Task<IResult> DiscardByHandleAsync(
        FailedMessages queue, HttpContext context, IOptions<TopologyOptions> topology, string handle, [Description(TypeParameter)] string? type = null)
    {
        if (TypeOf(type) is not { } chosen)
        {
            return Task.FromResult(UnknownType(type!));
        }
        if (!FailedMessageHandle.IsWellFormed(handle))
        {
            return Task.FromResult(MalformedHandle("handle", handle));
        }
        return DiscardOneAsync(queue, context, topology.Value.NamesOf(chosen), FailedMessageSelection.ByHandle(handle), $"No message with handle {handle} in the error queue.");
    }

    private static Task<IResult> DiscardOneAsync(FailedMessages queue, HttpContext context, QueueNames names, FailedMessageSelection selection, string notFound) =>
        BrokerCallAsync(context, async () => await queue.DiscardAsync(names, selection, OperatorOf(context), context.RequestAborted)
            ? Results.NoContent()
            : Results.Problem(statusCode: StatusCodes.Status404NotFound, title: notFound));

    private static IResult MalformedHandle(string field, string handle) => Results.ValidationProblem(new Dictionary<string, string[]>
    {
        [field] = [$"'{(handle.Length > 80 ? handle[..80] + "…" : handle)}' is no handle: a handle is the listing's, {FailedMessageHandle.Length} hex digits (0-9, a-f)."],
    });

    /// <summary>The type a call names, the order's when it names none; null for a name no type has.</summary>
    private static DataObjectType? TypeOf(string? name) => DataObjectTypes.Registered.ByName(name ?? TopologyOptions.OrderType);

    internal static IResult UnknownType(string name) => Results.ValidationProblem(new Dictionary<string, string[]>
    {
        ["type"] = [$"'{name}' is no registered type of data object ({string.Join(", ", DataObjectTypes.Registered.Select(t => t.Name))})."],
    });

    // The token's subject (its "sub"), and where the request came from.
    internal static string OperatorOf(HttpContext context) =>
        $"{context.User.Identity?.Name ?? "unnamed"}@{context.Connection.RemoteIpAddress}";

    internal static async Task<IResult> BrokerCallAsync(HttpContext context, Func<Task<IResult>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (BrokerFailures.IsUnreachable(e))
        {
            // The broker's own words (addresses, users, vhosts) go to the log, not to the caller.
            LogBrokerUnreachable(context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ErrorQueueEndpoints)),
                context.Request.Path, e);
            return Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "The broker is unreachable; nothing was changed.", detail: "Try again later; the API's log has the cause.");
        }
        catch (ErrorQueueReadRefusedException e)
        {
            // Not the broker being away, and not a retry's matter: its configuration makes reading lose messages.
            return Results.Problem(statusCode: StatusCodes.Status409Conflict,
                title: "Reading this error queue would spend its messages' delivery limit; nothing was read.",
                detail: e.Refusal.Detail,
                extensions: new Dictionary<string, object?> { ["queue"] = e.Refusal.Queue, ["command"] = e.Refusal.Command });
        }
    }

    [LoggerMessage(LogLevel.Warning, "{Path}: the broker is unreachable; nothing was changed.")]
    private static partial void LogBrokerUnreachable(ILogger logger, string path, Exception exception);
}
