using System.ComponentModel;
using Envio.ApiService.Messaging;
using Envio.ApiService.Security;
using Envio.Contracts;
using Envio.Messaging;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// For operators: pause every running consumer, for one type (<c>?type=payment</c>) or all of them (the work queues
/// keep what arrives), and resume it.
/// </summary>
public static class ConsumerEndpoints
{
    private const string TypeParameter = "The type of data object (order, payment, …) to pause or resume; every type when left out.";

    public static IEndpointRouteBuilder MapConsumerEndpoints(this IEndpointRouteBuilder app)
    {
        var consumers = app.MapGroup("/admin/consumers").WithTags("Consumers")
            .RequireAuthorization(Scopes.Admin)
            .RequireRateLimiting(ClientRateLimiting.PolicyName)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        consumers.MapPost("/pause", (ConsumerCommands commands, HttpContext context, [Description(TypeParameter)] string? type) => SendAsync(commands, context, ConsumerControl.Pause, type))
            .WithName("PauseConsumers")
            .WithSummary("Pause every running consumer")
            .WithDescription("Each consumer finishes the batch in hand and hands the rest back to the work queue, which keeps " +
                "everything that arrives meanwhile; its /health says Degraded. Lasts until resumed or the consumer restarts.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesValidationProblem();

        consumers.MapPost("/resume", (ConsumerCommands commands, HttpContext context, [Description(TypeParameter)] string? type) => SendAsync(commands, context, ConsumerControl.Resume, type))
            .WithName("ResumeConsumers")
            .WithSummary("Resume every paused consumer")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesValidationProblem();

        return app;
    }

    private static Task<IResult> SendAsync(ConsumerCommands commands, HttpContext context, string command, string? type)
    {
        var chosen = DataObjectTypes.Registered.ByName(type);
        if (type is not null && chosen is null)
        {
            return Task.FromResult(ErrorQueueEndpoints.UnknownType(type));
        }
        return ErrorQueueEndpoints.BrokerCallAsync(context, async () =>
        {
            await commands.SendAsync(command, chosen, ErrorQueueEndpoints.OperatorOf(context), context.RequestAborted);
            return Results.NoContent();
        });
    }
}
