using System.Diagnostics;
using System.Globalization;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.Tests.Support;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Envio.Tests.EndToEnd;

public sealed partial class FailureTests
{
    /// <summary>
    /// A rolling upgrade of the consumer: two replicas under the stream, each stopped in turn as an orchestrator stops
    /// a pod (SIGTERM) while it waits inside a batch's write, and started again before the next one goes. Whatever the
    /// stopping replica does with its batch (finishes it, or hands it back unacknowledged), every order answered 202 is
    /// stored once and the error queue stays empty.
    /// </summary>
    [Fact(Timeout = 900_000)]
    public Task Consumer_replicas_stopped_with_sigterm_inside_a_write_and_restarted_one_at_a_time_lose_and_duplicate_nothing() =>
        RunAsync("consumer replicas stopped (SIGTERM) inside a write and restarted one at a time", 500_000, async (app, _, ct) =>
        {
            foreach (var replica in await RunningReplicasAsync(app, "consumer", 2, ct))
            {
                var pid = await ReplicaPidAsync(app, replica, ct);
                await using (await HoldConsumerInsideAWriteAsync(app, ct))
                {
                    // The dotnet-run wrapper DCP started forwards SIGTERM to the service: its host's graceful stop.
                    using (var term = Process.Start("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)]))
                    {
                        await term.WaitForExitAsync(ct);
                    }
                    await Task.Delay(TimeSpan.FromSeconds(2), ct); // the stop begins while the write still waits
                }
                await WaitForReplicaAsync(app, replica, e => KnownResourceStates.TerminalStates.Contains(e.Snapshot.State?.Text), ct);
                var started = await app.ResourceCommands.ExecuteCommandAsync(replica, KnownResourceCommands.StartCommand, ct);
                Assert.True(started.Success, $"starting {replica}: {started.Message}");
                await WaitForReplicaAsync(app, replica,
                    e => e.Snapshot.State?.Text == KnownResourceStates.Running && e.Snapshot.HealthStatus == HealthStatus.Healthy, ct);
            }
            return [];
        }, appHostArgs: ["--Envio:ConsumerReplicas=2"], hitsWorkInFlight: false, accounting: Accounting.RowsOnly);

    /// <summary>The instance ids (consumer-xxxx) of a replicated resource's replicas, once that many run.</summary>
    private static async Task<IReadOnlyList<string>> RunningReplicasAsync(DistributedApplication app, string name, int count, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        var running = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var e in app.ResourceNotifications.WatchAsync(timeout.Token))
        {
            if (e.Resource.Name != name)
            {
                continue;
            }
            if (e.Snapshot.State?.Text == KnownResourceStates.Running)
            {
                running.Add(e.ResourceId);
            }
            else
            {
                running.Remove(e.ResourceId);
            }
            if (running.Count == count)
            {
                return [.. running];
            }
        }
        throw new OperationCanceledException();
    }

    private static async Task<int> ReplicaPidAsync(DistributedApplication app, string replica, CancellationToken ct)
    {
        var running = await WaitForReplicaAsync(app, replica, e => e.Snapshot.State?.Text == KnownResourceStates.Running, ct);
        return ResourceProcesses.PidOf(running);
    }

    /// <summary>One replica's first event that meets <paramref name="predicate"/> (its current state included).</summary>
    private static async Task<ResourceEvent> WaitForReplicaAsync(
        DistributedApplication app, string replica, Func<ResourceEvent, bool> predicate, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        await foreach (var e in app.ResourceNotifications.WatchAsync(timeout.Token))
        {
            if (e.ResourceId == replica && predicate(e))
            {
                return e;
            }
        }
        throw new OperationCanceledException();
    }
}
