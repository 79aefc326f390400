using System.ComponentModel;
using Envio.ApiService.Messaging;
using Envio.ApiService.Security;
using Envio.Contracts;
using Envio.Messaging;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// For operators: pause every consumer, for one type (<c>?type=payment</c>) or all of them (the work queues keep what
/// arrives), and resume it. The answer says the state sent and which consumers confirmed it.
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
            .WithSummary("Pause every consumer")
            .WithDescription("Each consumer stops taking messages and writes those it was already handed; the work queue keeps " +
                "everything that arrives meanwhile, and its /health says Degraded. The pause is kept by the broker until resumed: " +
                "consumers that restart, reconnect or start later pause too. The answer lists the consumers that confirmed " +
                "within a short wait; one that missed it (reconnecting) applies it within its periodic read.")
            .Produces<ConsumerCommandResult>(StatusCodes.Status200OK)
            .ProducesValidationProblem();

        consumers.MapPost("/resume", (ConsumerCommands commands, HttpContext context, [Description(TypeParameter)] string? type) => SendAsync(commands, context, ConsumerControl.Resume, type))
            .WithName("ResumeConsumers")
            .WithSummary("Resume every paused consumer")
            .WithDescription("Kept by the broker like a pause. The answer lists the consumers that confirmed within a short wait.")
            .Produces<ConsumerCommandResult>(StatusCodes.Status200OK)
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
            return Results.Ok(await commands.SendAsync(command, chosen, ErrorQueueEndpoints.OperatorOf(context), context.RequestAborted));
        });
    }
}
