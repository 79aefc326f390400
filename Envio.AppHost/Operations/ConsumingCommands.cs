using System.Text.Json;
using Microsoft.Extensions.Hosting;

namespace Envio.AppHost.Operations;

/// <summary>
/// Development only: pause and resume every consumer from the dashboard, on the <c>consumer</c> resource, for one
/// type or (left empty) all of them. Each is one call to the API's admin endpoints
/// (Envio.ApiService/Endpoints/ConsumerEndpoints.cs); the result says how many consumers confirmed.
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
        // Each calls the API (the consumers need not run: a pause is kept for those that start later).
        var whileApiIsUp = CommandStates.WhileUp(api.Resource);
        return consumer
            .WithCommandsFollowing(api.Resource)
            .WithCommand(Pause, "Pause consuming", async context =>
            {
                using var response = await AdminApi.CallAsync(endpoint, context, client => client.PostAsync(PathOf("pause", context), null, context.CancellationToken));
                return CommandResults.Success($"Paused ({await ConfirmedAsync(response, context)}); the work queue keeps what arrives, and consumers that start later pause too.");
            }, new CommandOptions
            {
                Description = "Every consumer stops taking messages (its /health says Degraded), also those that start later; the work queue keeps them until resumed.",
                ConfirmationMessage = "Pause consuming? Data objects wait in their work queue until you resume.",
                IconName = "Pause",
                UpdateState = whileApiIsUp,
                Arguments = [ErrorQueueCommands.TypeInput("Type of data object (empty: all)")],
            })
            .WithCommand(Resume, "Resume consuming", async context =>
            {
                using var response = await AdminApi.CallAsync(endpoint, context, client => client.PostAsync(PathOf("resume", context), null, context.CancellationToken));
                return CommandResults.Success($"Resumed ({await ConfirmedAsync(response, context)}).");
            }, new CommandOptions
            {
                Description = "Every paused consumer takes messages again.",
                IconName = "Play",
                UpdateState = whileApiIsUp,
                Arguments = [ErrorQueueCommands.TypeInput("Type of data object (empty: all)")],
            });
    }

    /// <summary>"state 4, confirmed by 2 consumers", from the API's answer.</summary>
    private static async Task<string> ConfirmedAsync(HttpResponseMessage response, ExecuteCommandContext context)
    {
        using var answer = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(context.CancellationToken), cancellationToken: context.CancellationToken);
        var confirmed = answer.RootElement.GetProperty("confirmations").GetArrayLength();
        return $"state {answer.RootElement.GetProperty("sequence").GetInt64()}, confirmed by {confirmed} consumer{(confirmed == 1 ? "" : "s")}";
    }

    private static string PathOf(string command, ExecuteCommandContext context) =>
        context.Arguments.GetString(ErrorQueueCommands.TypeArgument)?.Trim() is { Length: > 0 } type
            ? $"/admin/consumers/{command}?type={Uri.EscapeDataString(type)}"
            : $"/admin/consumers/{command}";
}
