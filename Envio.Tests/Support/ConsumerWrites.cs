using System.Globalization;
using System.Text.RegularExpressions;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;

namespace Envio.Tests.Support;

/// <summary>
/// What the consumer replicas say of each batch they committed: how many deliveries it held and how many of them were
/// new rows (the rest were already stored: redeliveries absorbed by the idempotent insert, the figure
/// <c>envio.consumer.orders.already_stored</c> counts). The consumer runs in its own process, out of the tests' meter
/// listeners' reach: its BatchWriter's per-batch debug line, turned on for the run, is how the figures leave it.
/// </summary>
public static partial class ConsumerWrites
{
    /// <summary>Turns the consumer's per-batch line on (it is Debug, off by default).</summary>
    public static void Enable(IDistributedApplicationTestingBuilder builder)
    {
        var consumer = builder.Resources.OfType<ProjectResource>().Single(r => r.Name == "consumer");
        builder.CreateResourceBuilder(consumer)
            .WithEnvironment("Logging__LogLevel__Envio.ConsumerService.Messaging.BatchWriter", "Debug");
    }

    /// <summary>Deliveries in committed batches, and new rows among them, over every replica and restart so far.</summary>
    public static (long Delivered, long Inserted) Sum(DistributedApplication app)
    {
        long delivered = 0, inserted = 0;
        // Each forwarded line carries its line number and timestamp: a line seen twice (a replica's log replayed when
        // it is started again) is one batch, counted once.
        foreach (var log in app.Services.GetFakeLogCollector().GetSnapshot().DistinctBy(log => (log.Category, log.Message)))
        {
            if (log.Category is { } category && ConsumerCategory().IsMatch(category) && Written().Match(log.Message) is { Success: true } line)
            {
                delivered += long.Parse(line.Groups[1].Value, CultureInfo.InvariantCulture);
                inserted += long.Parse(line.Groups[2].Value, CultureInfo.InvariantCulture);
            }
        }
        return (delivered, inserted);
    }

    [GeneratedRegex(@"\.Resources\.consumer(-[a-z0-9]+)?$")]
    private static partial Regex ConsumerCategory();

    /// <summary>BatchWriter's "Wrote a batch of {Count} orders ({Inserted} new)."</summary>
    [GeneratedRegex(@"Wrote a batch of (\d+) orders \((\d+) new\)")]
    private static partial Regex Written();
}
