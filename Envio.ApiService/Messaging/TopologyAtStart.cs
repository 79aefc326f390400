using Envio.Contracts;
using Envio.Messaging;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Messaging;

/// <summary>
/// Declares every registered type's exchanges and queues when the API starts, as the broker's administrator: the
/// consumer's user may only use them, so they must exist before it consumes, not only after the first publish of
/// each type. Tried again, with a growing pause, until the broker answers. Until then <c>/health</c> says Unhealthy,
/// so that the AppHost starts the consumers (which wait for the API) once the names they check exist.
/// </summary>
public sealed partial class TopologyAtStart(
    AdminConnection admin, IOptions<TopologyOptions> topology, QueueMismatches mismatches, ILogger<TopologyAtStart> logger) : BackgroundService, IHealthCheck
{
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(30);
    private volatile bool _declared;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(_declared ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("Declaring the types' exchanges and queues on the broker."));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var type in DataObjectTypes.Registered)
        {
            var names = topology.Value.NamesOf(type);
            await UntilDoneAsync(names.Exchange, async () => mismatches.Record(names, await admin.DeclareAsync(names, stoppingToken)), stoppingToken);
        }
        // The operators' command names and the kept pause state, which consumers read before they consume.
        await UntilDoneAsync(topology.Value.ControlExchange, async () => await ConsumerControl.DeclareAsync(
            ct => admin.CreateChannelAsync(null, ct), topology.Value, await admin.BrokerVersionAsync(stoppingToken), stoppingToken), stoppingToken);
        _declared = true;
    }

    private async Task UntilDoneAsync(string exchange, Func<Task> declare, CancellationToken stoppingToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await declare();
                return;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                var pause = TimeSpan.FromSeconds(Math.Min(LongestPause.TotalSeconds, attempt * 2));
                LogNotDeclared(logger, exchange, pause.TotalSeconds, e.Message);
                await Task.Delay(pause, stoppingToken);
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "Could not declare {Exchange} and its queues ({Reason}); trying again in {Seconds} s.")]
    private static partial void LogNotDeclared(ILogger logger, string exchange, double seconds, string reason);
}
