using Microsoft.Extensions.Hosting;

namespace Envio.AppHost.Operations;

/// <summary>
/// Development only: pause and resume every running consumer from the dashboard, on the <c>consumer</c> resource, for
/// one type or (left empty) all of them. Each is one call to the API's admin endpoints
/// (Envio.ApiService/Endpoints/ConsumerEndpoints.cs).
/// </summary>
internal static class ConsumingCommands
{
    public const string Pause = "pause-consuming";
    public const string Resume = "resume-consuming";

    public static IResourceBuilder<ProjectResource> WithConsumingCommands(this IResourceBuilder<ProjectResource> consumer, IResourceBuilder<ProjectResource> api)
    {
        var builder = consumer.ApplicationBuilder;
        if (builder.ExecutionContext.IsPublishMode || !builder.Environment.IsDevelopment())
        {
            return consumer;
        }
        var endpoint = api.GetEndpoint("http");
        return consumer
            .WithCommand(Pause, "Pause consuming", async context =>
            {
                using var response = await AdminApi.CallAsync(endpoint, context, client => client.PostAsync(PathOf("pause", context), null, context.CancellationToken));
                return CommandResults.Success("Every running consumer finishes its batch and stops taking messages; the work queue keeps them.");
            }, new CommandOptions
            {
                Description = "Every running consumer stops taking messages (its /health says Degraded); the work queue keeps them until resumed.",
                ConfirmationMessage = "Pause consuming? Data objects wait in their work queue until you resume.",
                IconName = "Pause",
                Arguments = [ErrorQueueCommands.TypeInput("Type of data object (empty: all)")],
            })
            .WithCommand(Resume, "Resume consuming", async context =>
            {
                using var response = await AdminApi.CallAsync(endpoint, context, client => client.PostAsync(PathOf("resume", context), null, context.CancellationToken));
                return CommandResults.Success("Every paused consumer takes messages again.");
            }, new CommandOptions
            {
                Description = "Every paused consumer takes messages again.",
                IconName = "Play",
                Arguments = [ErrorQueueCommands.TypeInput("Type of data object (empty: all)")],
            });
    }

    private static string PathOf(string command, ExecuteCommandContext context) =>
        context.Arguments.GetString(ErrorQueueCommands.TypeArgument)?.Trim() is { Length: > 0 } type
            ? $"/admin/consumers/{command}?type={Uri.EscapeDataString(type)}"
            : $"/admin/consumers/{command}";
}
