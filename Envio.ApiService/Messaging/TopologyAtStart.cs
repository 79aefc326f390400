using Envio.Contracts;
using Envio.Messaging;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Messaging;

/// <summary>
/// Declares every registered type's exchanges and queues when the API starts, as the broker's administrator: the
/// consumer's user may only use them, so they must exist before it consumes, not only after the first publish of
/// each type. Tried again, with a growing pause, until the broker answers.
/// </summary>
public sealed partial class TopologyAtStart(
    AdminConnection admin, IOptions<TopologyOptions> topology, QueueMismatches mismatches, ILogger<TopologyAtStart> logger) : BackgroundService
{
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var type in DataObjectTypes.Registered)
        {
            var names = topology.Value.NamesOf(type);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    mismatches.Record(names, await admin.DeclareAsync(names, stoppingToken));
                    break;
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    var pause = TimeSpan.FromSeconds(Math.Min(LongestPause.TotalSeconds, attempt * 2));
                    LogNotDeclared(logger, names.Exchange, pause.TotalSeconds, e.Message);
                    await Task.Delay(pause, stoppingToken);
                }
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "Could not declare {Exchange} and its queues ({Reason}); trying again in {Seconds} s.")]
    private static partial void LogNotDeclared(ILogger logger, string exchange, double seconds, string reason);
}
