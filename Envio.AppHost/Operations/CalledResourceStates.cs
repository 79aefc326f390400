using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;

namespace Envio.AppHost.Operations;

/// <summary>
/// The latest snapshot of every resource instance (the notification service looks instances up by an id DCP gives
/// them, which the application model does not expose), and, when a resource that commands call changes state or
/// health, the unchanged snapshot of each resource with such commands published again: Aspire runs every command's
/// UpdateState on each publication.
/// </summary>
internal sealed class CalledResourceStates(ResourceNotificationService notifications, DistributedApplicationModel model) : BackgroundService
{
    private readonly ConcurrentDictionary<string, ResourceEvent> _latest = new();

    public bool AnyInstance(IResource resource, Func<CustomResourceSnapshot, bool> predicate) =>
        _latest.Values.Any(instance => instance.Resource == resource && predicate(instance.Snapshot));

    /// <summary>Keeps <paramref name="change"/>; true when it changed its resource's state or health.</summary>
    public bool Record(ResourceEvent change)
    {
        var before = _latest.TryGetValue(change.ResourceId, out var previous) ? previous.Snapshot : null;
        _latest[change.ResourceId] = change;
        return before?.State?.Text != change.Snapshot.State?.Text || before?.HealthStatus != change.Snapshot.HealthStatus;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var change in notifications.WatchAsync(stoppingToken))
            {
                if (Record(change))
                {
                    await RefreshCommandsCallingAsync(change.Resource);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The AppHost stops.
        }
    }

    private async Task RefreshCommandsCallingAsync(IResource called)
    {
        var hosts = model.Resources
            .Where(resource => resource.Annotations.OfType<CommandsFollowAnnotation>().Any(follow => follow.Called == called))
            .ToHashSet();
        // Only instances that exist: publishing for an unknown id would add a resource to the dashboard.
        foreach (var instance in _latest.Values.Where(instance => hosts.Contains(instance.Resource)))
        {
            await notifications.PublishUpdateAsync(instance.Resource, instance.ResourceId, snapshot => snapshot);
        }
    }
}
