using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Envio.AppHost.Operations;

/// <summary>
/// The dashboard's commands that call a resource (the API's admin endpoints) are enabled only while that resource
/// runs and is not unhealthy: before it answers, clicking one could only fail.
/// </summary>
internal static class CommandStates
{
    /// <summary>
    /// A command's <see cref="CommandOptions.UpdateState"/>: Enabled while one instance of <paramref name="called"/> is
    /// <see cref="IsUp"/>, Disabled otherwise. The host resource must have <see cref="WithCommandsFollowing{T}"/>.
    /// </summary>
    public static Func<UpdateCommandStateContext, ResourceCommandState> WhileUp(IResource called) => context =>
        context.Services.GetRequiredService<CalledResourceStates>().AnyInstance(called, IsUp)
            ? ResourceCommandState.Enabled
            : ResourceCommandState.Disabled;

    /// <summary>Running, and healthy or degraded (a running resource whose first health check has not answered is unhealthy).</summary>
    public static bool IsUp(CustomResourceSnapshot snapshot) => IsUp(snapshot.State?.Text, snapshot.HealthStatus);

    /// <summary><see cref="IsUp(CustomResourceSnapshot)"/> on a snapshot's state and health (derived from its health reports).</summary>
    public static bool IsUp(string? state, HealthStatus? health) =>
        state == KnownResourceStates.Running && health is not HealthStatus.Unhealthy;

    /// <summary>
    /// Aspire evaluates a command's UpdateState when the snapshot of the resource the command is on changes: this has
    /// the commands of <paramref name="host"/> evaluated again each time <paramref name="called"/> changes state or health.
    /// </summary>
    public static IResourceBuilder<T> WithCommandsFollowing<T>(this IResourceBuilder<T> host, IResource called)
        where T : IResource
    {
        var services = host.ApplicationBuilder.Services;
        services.TryAddSingleton<CalledResourceStates>();
        services.AddHostedService(provider => provider.GetRequiredService<CalledResourceStates>());
        return host.WithAnnotation(new CommandsFollowAnnotation(called));
    }
}

/// <summary>The commands of the resource this is on call <paramref name="Called"/>.</summary>
internal sealed record CommandsFollowAnnotation(IResource Called) : IResourceAnnotation;
