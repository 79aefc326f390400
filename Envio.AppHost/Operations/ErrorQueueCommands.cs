using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Envio.Contracts;
using Envio.Messaging;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Envio.AppHost.Operations;

/// <summary>
/// Development only: the error queue operated from the dashboard, on the <c>messaging</c> resource. Each command is
/// one call to the API's admin endpoints (Envio.ApiService/Endpoints/ErrorQueueEndpoints.cs) with an admin token the
/// AppHost mints, so the dashboard does exactly what an operator's curl does, audit log included.
/// </summary>
internal static partial class ErrorQueueCommands
{
    public const string Show = "show-error-queue";
    public const string ReplayAll = "replay-error-queue";
    public const string ReplayOne = "replay-error-message";
    public const string DiscardOne = "discard-error-message";
    public const string MessageIdArgument = "messageId";

    /// <summary>Which type's error queue (a registered type's name); without it, the order's.</summary>
    public const string TypeArgument = "type";

    private const int ReasonsShown = 10;

    public static IResourceBuilder<T> WithErrorQueueCommands<T>(this IResourceBuilder<T> messaging, IResourceBuilder<ProjectResource> api)
        where T : IResource
    {
        var builder = messaging.ApplicationBuilder;
        if (builder.ExecutionContext.IsPublishMode || !builder.Environment.IsDevelopment())
        {
            return messaging;
        }
        var endpoint = api.GetEndpoint("http");
        var whileApiIsUp = CommandStates.WhileUp(api.Resource); // each calls the API

        return messaging
            .WithCommandsFollowing(api.Resource)
            .WithCommand(Show, "Show error queue", async context =>
            {
                using var page = await AdminApi.CallAsync(endpoint, context, client => client.GetAsync(new Uri($"/admin/errors?limit={ReasonsShown}&type={TypeOf(context)}", UriKind.Relative), context.CancellationToken));
                using var listing = JsonDocument.Parse(await page.Content.ReadAsStringAsync(context.CancellationToken));
                var waiting = listing.RootElement.GetProperty("waiting").GetUInt32();
                LogWaiting(context.Logger, waiting);
                foreach (var message in listing.RootElement.GetProperty("messages").EnumerateArray())
                {
                    LogFailed(context.Logger, message.GetProperty("messageId").GetString() ?? "(no message id)",
                        message.GetProperty("handle").GetString(), message.GetProperty("reason").GetString());
                }
                return CommandResults.Success($"{waiting} message(s) wait in the error queue; the first reasons are in the resource's log.");
            }, new CommandOptions
            {
                Description = "How many messages wait in a type's error queue, and why the first ones failed (in this resource's log).",
                IconName = "DocumentSearch",
                UpdateState = whileApiIsUp,
                Arguments = [TypeInput()],
            })
            .WithCommand(ReplayAll, "Replay all", async context =>
            {
                using var response = await AdminApi.CallAsync(endpoint, context, client => client.PostAsJsonAsync($"/admin/errors/replay?type={TypeOf(context)}", new { all = true }, context.CancellationToken));
                // Handles: one per message replayed, also those without a message id.
                var replayed = (await response.Content.ReadFromJsonAsync<JsonElement>(context.CancellationToken)).GetProperty("replayedHandles").GetArrayLength();
                return CommandResults.Success($"{replayed} message(s) replayed into the work queue.");
            }, new CommandOptions
            {
                Description = "Moves every message waiting in the error queue back to the work queue (fix the cause first).",
                ConfirmationMessage = "Replay every message of the error queue into the work queue?",
                IconName = "ArrowRepeatAll",
                UpdateState = whileApiIsUp,
                Arguments = [TypeInput()],
            })
            .WithCommand(ReplayOne, "Replay one", async context =>
            {
                var id = context.Arguments.GetString(MessageIdArgument)?.Trim() ?? "";
                using var response = await AdminApi.CallAsync(endpoint, context, client => client.PostAsJsonAsync($"/admin/errors/replay?type={TypeOf(context)}", new { messageIds = new[] { id } }, context.CancellationToken));
                var replayed = (await response.Content.ReadFromJsonAsync<JsonElement>(context.CancellationToken)).GetProperty("replayed").GetArrayLength();
                return replayed > 0
                    ? CommandResults.Success(replayed == 1 ? $"{id} replayed into the work queue." : $"{id} replayed into the work queue ({replayed} copies).")
                    : CommandResults.Failure($"No message {id} in the error queue.");
            }, new CommandOptions
            {
                Description = "Moves one message, by its message id, from the error queue back to the work queue.",
                ConfirmationMessage = "Replay this message into the work queue?",
                IconName = "ArrowRepeat1",
                UpdateState = whileApiIsUp,
                Arguments = [TypeInput(), MessageIdInput()],
            })
            .WithCommand(DiscardOne, "Discard one", async context =>
            {
                var id = context.Arguments.GetString(MessageIdArgument)?.Trim() ?? "";
                using var response = await AdminApi.CallAsync(endpoint, context,
                    client => client.DeleteAsync(new Uri($"/admin/errors/{Uri.EscapeDataString(id)}?type={TypeOf(context)}", UriKind.Relative), context.CancellationToken),
                    HttpStatusCode.NotFound);
                return response.StatusCode == HttpStatusCode.NotFound
                    ? CommandResults.Failure($"No message {id} in the error queue.")
                    : CommandResults.Success($"{id} discarded: it will not be processed (the API logged who and why).");
            }, new CommandOptions
            {
                Description = "Removes one message, by its message id, from the error queue for good.",
                ConfirmationMessage = "Discard this message for good? It will never be stored.",
                IconName = "Delete",
                UpdateState = whileApiIsUp,
                Arguments = [TypeInput(), MessageIdInput()],
            });
    }

    /// <summary>The type the command applies to, chosen among the registered ones (the order's when left empty).</summary>
    internal static InteractionInput TypeInput(string label = "Type of data object") => new()
    {
        Name = TypeArgument,
        Label = label,
        InputType = InputType.Choice,
        Required = false,
        Options = [.. DataObjectTypes.Registered.Select(type => KeyValuePair.Create(type.Name, type.Plural))],
    };

    internal static string TypeOf(ExecuteCommandContext context, string fallback = TopologyOptions.OrderType) =>
        Uri.EscapeDataString(context.Arguments.GetString(TypeArgument)?.Trim() is { Length: > 0 } type ? type : fallback);

    private static InteractionInput MessageIdInput() => new()
    {
        Name = MessageIdArgument,
        Label = "Message id",
        InputType = InputType.Text,
        Required = true,
        MaxLength = 100,
    };

    [LoggerMessage(LogLevel.Information, "{Waiting} message(s) wait in the error queue.")]
    private static partial void LogWaiting(ILogger logger, uint waiting);

    [LoggerMessage(LogLevel.Information, "{MessageId} (handle {Handle}): {Reason}")]
    private static partial void LogFailed(ILogger logger, string messageId, string? handle, string? reason);
}
