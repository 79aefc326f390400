using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Aspire.Hosting;
using Envio.AppHost.Operations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Logging.Testing;

namespace Envio.Tests.Support;

/// <summary>Starts the real AppHost with the broker and the database as local processes, in a private data root.</summary>
public static partial class EnvioAppHost
{
    /// <summary>
    /// A ceiling, not an expectation: a stack is healthy in about a minute on a 2-core machine (three nodes in two),
    /// and a machine three times slower, or loaded by other work, must still pass. Each start reports what it took.
    /// </summary>
    public static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(10);

    /// <summary>When each stack <see cref="StartAsync(string, CancellationToken, string[])"/> started was first all healthy.</summary>
    private static readonly ConditionalWeakTable<DistributedApplication, StrongBox<DateTimeOffset>> HealthySince = [];

    /// <summary>A data root of its own for one AppHost instance, so its clean-up can be checked in isolation.</summary>
    public static string NewDataRoot() => Path.Combine(Path.GetTempPath(), "envio-tests", Guid.NewGuid().ToString("N")[..12]);

    public static Task<DistributedApplication> StartAsync(string dataRoot, CancellationToken cancellationToken, params string[] extraArgs) =>
        StartAsync(dataRoot, _ => { }, cancellationToken, extraArgs);

    /// <summary>Starts the AppHost, its model changed by <paramref name="configure"/>, and waits until the stack is healthy.</summary>
    public static async Task<DistributedApplication> StartAsync(
        string dataRoot, Action<IDistributedApplicationTestingBuilder> configure, CancellationToken cancellationToken, params string[] extraArgs)
    {
        var app = await BuildAsync(dataRoot, configure, cancellationToken, extraArgs);
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(StartTimeout);
        await app.StartAsync(timeout.Token);
        foreach (var resource in new[] { "messaging", "enviodb", "api", "consumer" })
        {
            await app.ResourceNotifications.WaitForResourceHealthyAsync(resource, timeout.Token);
        }
        HealthySince.AddOrUpdate(app, new StrongBox<DateTimeOffset>(DateTimeOffset.UtcNow));
        TestContext.Current.SendDiagnosticMessage($"stack healthy after {started.Elapsed.TotalSeconds:0} s ({string.Join(' ', extraArgs)})");
        return app;
    }

    /// <summary>
    /// The AppHost built but not started, with the tests' token authority and every log collected, after
    /// <paramref name="configure"/> changed its model (a test that leaves a service out, for example).
    /// </summary>
    public static async Task<DistributedApplication> BuildAsync(
        string dataRoot, Action<IDistributedApplicationTestingBuilder> configure, CancellationToken cancellationToken, params string[] extraArgs)
    {
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Envio_AppHost>(
            ["--Envio:Hosting=processes", $"--Envio:Processes:DataRoot={dataRoot}",
             // The development signing key goes to a store of the run's own, never to the developer's.
             $"--{DevelopmentTokens.UserSecretsRootKey}={Path.Combine(dataRoot, "user-secrets")}", .. extraArgs], cancellationToken);
        builder.TrustTestTokens();

        builder.Services.AddLogging(logging =>
        {
            // Everything is collected for assertions; only warnings and errors reach the console.
            logging.SetMinimumLevel(LogLevel.Information);
            logging.AddFilter<ConsoleLoggerProvider>(level => level >= LogLevel.Warning);
            logging.AddFakeLogging();
        });
        configure(builder);

        return await builder.BuildAsync(cancellationToken);
    }

    /// <summary>
    /// Lines the services (not the backing servers, which log to stderr by design) wrote at error level or above:
    /// their console logger's <c>fail:</c> and <c>crit:</c> lines, and anything they wrote to stderr. Aspire forwards
    /// each line of a resource's output as <c>"{line number}: {timestamp} {content}"</c> at Information level (Error
    /// for stderr), and a project's console output carries ANSI colour codes around the level, as in
    /// <c>"49: 2026-11-29T20:26:21.9150000Z \e[41m\e[30mfail\e[39m\e[22m\e[49m: Microsoft…"</c>: all three are
    /// skipped before matching.
    /// </summary>
    public static IReadOnlyList<string> ServiceErrors(this DistributedApplication app) => app.ServiceErrors(DateTimeOffset.MinValue);

    /// <summary>
    /// The services' error lines collected since <paramref name="since"/>: on a stack shared by many tests, what one
    /// test's own window holds, whatever ran before it.
    /// </summary>
    public static IReadOnlyList<string> ServiceErrors(this DistributedApplication app, DateTimeOffset since)
    {
        var lines = ServiceLines(app, since);
        // A stack not started by StartAsync (a test of a broken one) is allowed nothing.
        var healthy = HealthySince.TryGetValue(app, out var healthySince) ? healthySince.Value : DateTimeOffset.MinValue;
        var errors = new List<string>();
        for (var i = 0; i < lines.Count; i++)
        {
            if ((lines[i].Level >= LogLevel.Error || IsErrorLine(lines[i].Message)) && !IsStartingUp(lines[i].Message, healthy))
            {
                // The entry's first line names the level and category; the next ones its message and exception.
                var entry = lines.Skip(i).Take(4).Where(l => l.Category == lines[i].Category).Select(l => l.Message).ToList();
                if (!IsCancelledHealthCheck(entry))
                {
                    errors.Add($"{lines[i].Category}: {string.Join(" | ", entry)}");
                }
            }
        }
        return errors;
    }

    /// <summary>
    /// Allowed: a health check failing before the stack was first healthy. The AppHost polls each service's /health
    /// until it answers Healthy (that is what <c>WaitForResourceHealthyAsync</c> waits for), and the API's first
    /// broker check can meet its connection still opening (a channel open cancelled after ~200 ms on a loaded
    /// machine): the health check service logs each such result as an error. After the start, one is an error.
    /// </summary>
    private static bool IsStartingUp(string line, DateTimeOffset healthy) =>
        line.Contains("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService[103]", StringComparison.Ordinal)
        && Timestamp().Match(line) is { Success: true } stamp
        && DateTimeOffset.Parse(stamp.Groups[1].Value, CultureInfo.InvariantCulture) < healthy;

    /// <summary>
    /// Allowed at any time: a health check that was cancelled, not failed (its probe gave up on a loaded machine, or
    /// the broker connection was recovering). The health check service logs that as an error too; it is /health's own
    /// report, which the tests judge where it matters, not an error of the data path.
    /// </summary>
    private static bool IsCancelledHealthCheck(List<string> entry) =>
        entry[0].Contains("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService[103]", StringComparison.Ordinal)
        && entry.Skip(1).Any(line => line.Contains("TaskCanceledException", StringComparison.Ordinal)
            || line.Contains("OperationCanceledException", StringComparison.Ordinal));

    /// <summary>Fails with every error line the services logged, and what followed each.</summary>
    public static void AssertNoServiceErrors(this DistributedApplication app) => app.AssertNoServiceErrors(DateTimeOffset.MinValue);

    /// <summary>Fails with every error line the services logged since <paramref name="since"/> (a test's own window).</summary>
    public static void AssertNoServiceErrors(this DistributedApplication app, DateTimeOffset since)
    {
        var errors = app.ServiceErrors(since);
        Assert.True(errors.Count == 0, $"the services logged {errors.Count} error(s):\n" + string.Join("\n", errors));
    }

    /// <summary>
    /// What the services wrote since <paramref name="since"/> at warning level or above (their console's <c>warn:</c>,
    /// <c>fail:</c> and <c>crit:</c> entries with the line after each), each prefixed by its resource: for a failure
    /// message that has to say what a replica was doing.
    /// </summary>
    public static IReadOnlyList<string> ServiceWarnings(this DistributedApplication app, DateTimeOffset since)
    {
        var lines = ServiceLines(app, since);
        return lines
            .Select((line, i) => (line, i))
            .Where(x => ConsoleLevel().Match(x.line.Message) is { Success: true })
            .Select(x => $"{x.line.Category![(x.line.Category!.LastIndexOf('.') + 1)..]}: {x.line.Message}"
                + (x.i + 1 < lines.Count && lines[x.i + 1].Category == x.line.Category ? " | " + lines[x.i + 1].Message : ""))
            .ToList();
    }

    /// <summary>Whether a forwarded line of a service's console output is a <c>fail:</c> or <c>crit:</c> entry.</summary>
    public static bool IsErrorLine(string forwarded) =>
        ConsoleLevel().Match(forwarded) is { Success: true } entry && entry.Groups["level"].Value is "fail" or "crit";

    /// <summary>What the api and the consumer replicas wrote since <paramref name="since"/>, in order.</summary>
    private static List<FakeLogRecord> ServiceLines(DistributedApplication app, DateTimeOffset since) =>
        app.Services.GetFakeLogCollector().GetSnapshot().Where(log => IsService(log.Category) && log.Timestamp >= since).ToList();

    /// <summary>The api and the consumer (each replica's category ends with its name: consumer, consumer-xxxx).</summary>
    private static bool IsService(string? category) =>
        category is not null && ServiceCategory().IsMatch(category);

    [GeneratedRegex(@"\.Resources\.(api|consumer)(-[a-z0-9]+)?$")]
    private static partial Regex ServiceCategory();

    [GeneratedRegex(@"^\d+: (\d{4}-\d\d-\d\dT[0-9:.]+Z) ")]
    private static partial Regex Timestamp();

    /// <summary>
    /// An optional line number and timestamp, any colour codes, then the console formatter's level (<c>level</c>:
    /// warn, fail or crit; the levels below are not matched).
    /// </summary>
    [GeneratedRegex(@"^(\d+: )?(\d{4}-\d\d-\d\dT[0-9:.]+Z )?(\x1B\[[0-9;]*m)*(?<level>warn|fail|crit)(\x1B\[[0-9;]*m)*:")]
    private static partial Regex ConsoleLevel();
}
