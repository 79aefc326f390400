using Envio.ApiService.Messaging;
using Envio.ApiService.Security;
using Envio.Contracts.Messaging;

namespace Envio.ApiService.Endpoints;

/// <summary>For operators: pause every running consumer (the work queue keeps what arrives) and resume it.</summary>
public static class ConsumerEndpoints
{
    public static IEndpointRouteBuilder MapConsumerEndpoints(this IEndpointRouteBuilder app)
    {
        var consumers = app.MapGroup("/admin/consumers").WithTags("Consumers")
            .RequireAuthorization(Scopes.Admin)
            .RequireRateLimiting(ClientRateLimiting.PolicyName)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        consumers.MapPost("/pause", (ConsumerCommands commands, HttpContext context) => SendAsync(commands, context, ConsumerControl.Pause))
            .WithName("PauseConsumers")
            .WithSummary("Pause every running consumer")
            .WithDescription("Each consumer finishes the batch in hand and hands the rest back to the work queue, which keeps " +
                "everything that arrives meanwhile; its /health says Degraded. Lasts until resumed or the consumer restarts.")
            .Produces(StatusCodes.Status204NoContent);

        consumers.MapPost("/resume", (ConsumerCommands commands, HttpContext context) => SendAsync(commands, context, ConsumerControl.Resume))
            .WithName("ResumeConsumers")
            .WithSummary("Resume every paused consumer")
            .Produces(StatusCodes.Status204NoContent);

        return app;
    }

    private static Task<IResult> SendAsync(ConsumerCommands commands, HttpContext context, string command) =>
        ErrorQueueEndpoints.BrokerCallAsync(async () =>
        {
            await commands.SendAsync(command, ErrorQueueEndpoints.OperatorOf(context), context.RequestAborted);
            return Results.NoContent();
        });
}
