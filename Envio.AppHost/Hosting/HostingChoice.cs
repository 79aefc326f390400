using System.ComponentModel;
using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Envio.AppHost.Hosting;

internal enum HostingMode { Containers, Processes }

internal enum DatabaseEngine { SqlServer, Postgres }

/// <summary>
/// How this run hosts the broker and the database, from <c>Envio:Hosting</c> (auto | containers | processes)
/// and <c>Envio:Database</c> (sqlserver | postgres), with the reason, which is logged at start.
/// </summary>
internal sealed record HostingChoice(HostingMode Mode, DatabaseEngine Database, string Reason);

internal static partial class HostingChoiceExtensions
{
    public static HostingChoice ChooseHosting(this IDistributedApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var requested = configuration["Envio:Hosting"] is { Length: > 0 } value ? value.Trim().ToLowerInvariant() : "auto";

        var (mode, reason) = requested switch
        {
            "containers" => (HostingMode.Containers, "Envio:Hosting=containers"),
            "processes" => (HostingMode.Processes, "Envio:Hosting=processes"),
            // What ops deploy is containers, whatever the machine that writes the manifest has.
            "auto" when builder.ExecutionContext.IsPublishMode => (HostingMode.Containers, "publishing a deployment"),
            "auto" => ContainerRuntime.Find(configuration) is { } runtime
                ? (HostingMode.Containers, $"the container runtime '{runtime}' answers")
                : (HostingMode.Processes, "no container runtime answers (tried docker and podman)"),
            _ => throw new DistributedApplicationException(
                $"Envio:Hosting must be 'auto', 'containers' or 'processes', not '{requested}'."),
        };

        var database = configuration["Envio:Database"]?.Trim().ToLowerInvariant() switch
        {
            null or "" => mode == HostingMode.Containers ? DatabaseEngine.SqlServer : DatabaseEngine.Postgres,
            "sqlserver" => DatabaseEngine.SqlServer,
            "postgres" or "postgresql" => DatabaseEngine.Postgres,
            var other => throw new DistributedApplicationException(
                $"Envio:Database must be 'sqlserver' or 'postgres', not '{other}'."),
        };

        var choice = new HostingChoice(mode, database, reason);

        builder.Eventing.Subscribe<BeforeStartEvent>((@event, _) =>
        {
            LogChoice(@event.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Envio.AppHost"),
                choice.Mode, choice.Reason, choice.Database);
            return Task.CompletedTask;
        });

        return choice;
    }

    [LoggerMessage(LogLevel.Information, "Backing services run as {Mode} ({Reason}); database engine: {Database}.")]
    private static partial void LogChoice(ILogger logger, HostingMode mode, string reason, DatabaseEngine database);
}

/// <summary>Finds a container runtime that answers, the way Aspire would pick one (ASPIRE_CONTAINER_RUNTIME first).</summary>
internal static class ContainerRuntime
{
    public static string? Find(IConfiguration configuration)
    {
        var configured = configuration["ASPIRE_CONTAINER_RUNTIME"] ?? configuration["DOTNET_ASPIRE_CONTAINER_RUNTIME"];
        string[] candidates = configured is { Length: > 0 } ? [configured] : ["docker", "podman"];
        return candidates.FirstOrDefault(Answers);
    }

    // A client without a running engine (docker installed, daemon absent) fails `info` at once.
    private static bool Answers(string runtime)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(runtime, ["info", "--format", "{{.ServerVersion}}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            });
            if (process is null)
            {
                return false;
            }
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }
            return process.ExitCode == 0;
        }
        catch (Win32Exception)
        {
            return false; // not installed
        }
    }
}
