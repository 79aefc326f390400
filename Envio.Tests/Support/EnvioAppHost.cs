using Aspire.Hosting;
using Envio.AppHost.Operations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Envio.Tests.Support;

/// <summary>Starts the real AppHost with the broker and the database as local processes, in a private data root.</summary>
public static class EnvioAppHost
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3);

    /// <summary>A data root of its own for one AppHost instance, so its clean-up can be checked in isolation.</summary>
    public static string NewDataRoot() => Path.Combine(Path.GetTempPath(), "envio-tests", Guid.NewGuid().ToString("N")[..12]);

    public static Task<DistributedApplication> StartAsync(string dataRoot, CancellationToken cancellationToken, params string[] extraArgs) =>
        StartAsync(dataRoot, _ => { }, cancellationToken, extraArgs);

    /// <summary>As above, with <paramref name="change"/> applied to the model before it starts (a service's environment, say).</summary>
    public static async Task<DistributedApplication> StartAsync(
        string dataRoot, Action<IDistributedApplicationTestingBuilder> change, CancellationToken cancellationToken, params string[] extraArgs)
    {
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Envio_AppHost>(
            ["--Envio:Hosting=processes", $"--Envio:Processes:DataRoot={dataRoot}",
             // The development signing key goes to a store of the run's own, never to the developer's.
             $"--{DevelopmentTokens.UserSecretsRootKey}={Path.Combine(dataRoot, "user-secrets")}", .. extraArgs], cancellationToken);
        builder.TrustTestTokens();
        change(builder);

        builder.Services.AddLogging(logging =>
        {
            // Everything is collected for assertions; only warnings and errors reach the console.
            logging.SetMinimumLevel(LogLevel.Information);
            logging.AddFilter<ConsoleLoggerProvider>(level => level >= LogLevel.Warning);
            logging.AddFakeLogging();
        });

        var app = await builder.BuildAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(StartTimeout);
        await app.StartAsync(timeout.Token);
        foreach (var resource in new[] { "messaging", "enviodb", "api", "consumer" })
        {
            await app.ResourceNotifications.WaitForResourceHealthyAsync(resource, timeout.Token);
        }
        return app;
    }

    /// <summary>Lines the services (not the backing servers, which log to stderr by design) wrote at error level.</summary>
    public static IReadOnlyList<string> ServiceErrors(this DistributedApplication app) =>
        app.Services.GetFakeLogCollector().GetSnapshot()
            .Where(log => log.Category is { } category
                && (category.EndsWith(".Resources.api", StringComparison.Ordinal) || category.EndsWith(".Resources.consumer", StringComparison.Ordinal)))
            .Where(log => log.Level >= LogLevel.Error
                || log.Message.StartsWith("fail:", StringComparison.Ordinal)
                || log.Message.StartsWith("crit:", StringComparison.Ordinal))
            .Select(log => $"{log.Category}: {log.Message}")
            .ToList();
}
