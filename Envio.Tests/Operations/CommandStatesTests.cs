using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.AppHost.Operations;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Envio.Tests.Operations;

/// <summary>
/// The dashboard's commands that call the API (pause and resume on <c>consumer</c>, the error queue's on
/// <c>messaging</c>) are enabled only while the API runs and is not unhealthy, and follow it as it changes.
/// </summary>
public sealed class CommandStatesTests : IAsyncDisposable
{
    private readonly DistributedApplication _app;
    private readonly IResource _api;
    private readonly IResource _consumer;
    private readonly IResource _messaging;

    public CommandStatesTests()
    {
        var builder = DistributedApplication.CreateBuilder(new DistributedApplicationOptions
        {
            Args = ["--environment=Development"], // the commands exist in Development only
            DisableDashboard = true,
        });
        var api = builder.AddProject("api", Path.Combine(Repository.Root, "Envio.ApiService", "Envio.ApiService.csproj"));
        var consumer = builder.AddProject("consumer", Path.Combine(Repository.Root, "Envio.ConsumerService", "Envio.ConsumerService.csproj"))
            .WithConsumingCommands(api);
        var messaging = builder.AddContainer("messaging", "rabbitmq").WithErrorQueueCommands(api);
        _app = builder.Build();
        (_api, _consumer, _messaging) = (api.Resource, consumer.Resource, messaging.Resource);
    }

    public static TheoryData<string> NotRunning() =>
    [
        KnownResourceStates.NotStarted, KnownResourceStates.Waiting, KnownResourceStates.Starting, KnownResourceStates.FailedToStart,
        KnownResourceStates.RuntimeUnhealthy, KnownResourceStates.Stopping, KnownResourceStates.Exited, KnownResourceStates.Finished,
    ];

    [Fact]
    public void Every_command_that_calls_the_api_is_enabled_while_it_runs_healthy()
    {
        ApiIs(KnownResourceStates.Running);

        Assert.All(CommandsCallingTheApi(), command => Assert.Equal(ResourceCommandState.Enabled, StateOf(command)));
    }

    [Theory]
    [MemberData(nameof(NotRunning))]
    public void Every_command_that_calls_the_api_is_disabled_while_it_does_not_run(string state)
    {
        ApiIs(state);

        Assert.All(CommandsCallingTheApi(), command => Assert.Equal(ResourceCommandState.Disabled, StateOf(command)));
    }

    [Theory]
    [InlineData(HealthStatus.Healthy, true)]
    [InlineData(HealthStatus.Degraded, true)]
    [InlineData(HealthStatus.Unhealthy, false)] // also a running resource whose first health check has not answered
    public void A_running_api_is_up_unless_it_is_unhealthy(HealthStatus health, bool up)
    {
        Assert.Equal(up, CommandStates.IsUp(KnownResourceStates.Running, health));
        Assert.False(CommandStates.IsUp(KnownResourceStates.Starting, health));
    }

    [Fact]
    public void Before_the_api_has_any_state_they_are_disabled() =>
        Assert.All(CommandsCallingTheApi(), command => Assert.Equal(ResourceCommandState.Disabled, StateOf(command)));

    [Fact]
    public async Task The_commands_on_another_resource_follow_the_api_as_it_starts_and_exits()
    {
        var ct = TestContext.Current.CancellationToken;
        var notifications = _app.Services.GetRequiredService<ResourceNotificationService>();
        var follower = _app.Services.GetRequiredService<CalledResourceStates>(); // a hosted service in the AppHost
        await follower.StartAsync(ct);
        try
        {
            await notifications.PublishUpdateAsync(_consumer, state => state with { State = KnownResourceStates.Running });
            await notifications.PublishUpdateAsync(_api, state => state with { State = KnownResourceStates.Starting });
            await ConsumerCommandsAreAsync(ResourceCommandState.Disabled, notifications, ct);

            // Only the API changes: the consumer's commands are evaluated again all the same.
            await notifications.PublishUpdateAsync(_api, state => state with { State = KnownResourceStates.Running });
            await ConsumerCommandsAreAsync(ResourceCommandState.Enabled, notifications, ct);

            await notifications.PublishUpdateAsync(_api, state => state with { State = KnownResourceStates.Exited });
            await ConsumerCommandsAreAsync(ResourceCommandState.Disabled, notifications, ct);
        }
        finally
        {
            await follower.StopAsync(ct);
        }
    }

    private async Task ConsumerCommandsAreAsync(ResourceCommandState expected, ResourceNotificationService notifications, CancellationToken ct)
    {
        // A ceiling, not a promise: on a loaded machine (two CPU burners beside the suite) the follower took over 10 s.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(1));
        await notifications.WaitForResourceAsync(_consumer.Name,
            e => e.Snapshot.Commands.Length > 0 && e.Snapshot.Commands.All(command => command.State == expected), timeout.Token);
    }

    private List<ResourceCommandAnnotation> CommandsCallingTheApi()
    {
        var commands = _consumer.Annotations.OfType<ResourceCommandAnnotation>()
            .Concat(_messaging.Annotations.OfType<ResourceCommandAnnotation>())
            .ToList();
        Assert.Equal(
            [ConsumingCommands.Pause, ConsumingCommands.Resume, ErrorQueueCommands.Show, ErrorQueueCommands.ReplayAll, ErrorQueueCommands.ReplayOne, ErrorQueueCommands.DiscardOne],
            commands.Select(command => command.Name));
        return commands;
    }

    /// <summary>What the dashboard would show: the callback run with the host's own snapshot, which is always running.</summary>
    private ResourceCommandState StateOf(ResourceCommandAnnotation command) => command.UpdateState(new UpdateCommandStateContext
    {
        ResourceSnapshot = Snapshot(KnownResourceStates.Running),
        Services = _app.Services,
    });

    private void ApiIs(string state) =>
        _app.Services.GetRequiredService<CalledResourceStates>().Record(new ResourceEvent(_api, "api-x1y2z3", Snapshot(state)));

    /// <summary>Without health reports: Aspire derives Healthy while running, no health otherwise.</summary>
    private static CustomResourceSnapshot Snapshot(string state) => new()
    {
        ResourceType = "Project",
        Properties = [],
        State = state,
    };

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
