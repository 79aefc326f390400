using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Envio.AppHost.Hosting;

/// <summary>
/// The private area of one AppHost run for the backing services it starts as local processes: a directory per
/// resource under <c>Envio:Processes:DataRoot</c> (default: the temp folder's <c>envio</c>), free loopback ports,
/// and a clean-up that leaves no process and no data behind, even after a crash (the next run sweeps).
/// </summary>
internal sealed partial class LocalProcessWorkspace
{
    /// <summary>Set on every process this run starts; children inherit it, so the clean-up finds them all.</summary>
    public const string MarkerVariable = "ENVIO_RUN_DIRECTORY";

    private const string OwnerFileName = "apphost.pid";
    private int _cleaned;

    private LocalProcessWorkspace(string dataRoot)
    {
        DataRoot = dataRoot;
        RunDirectory = Path.Combine(dataRoot, $"run-{Environment.ProcessId}-{Guid.NewGuid():N}"[..24]);
    }

    public string DataRoot { get; }

    public string RunDirectory { get; }

    public static LocalProcessWorkspace For(IDistributedApplicationBuilder builder)
    {
        if (builder.Services.FirstOrDefault(d => d.ServiceType == typeof(LocalProcessWorkspace))?.ImplementationInstance
            is LocalProcessWorkspace existing)
        {
            return existing;
        }

        var dataRoot = builder.Configuration["Envio:Processes:DataRoot"] is { Length: > 0 } configured
            ? Path.GetFullPath(configured)
            : Path.Combine(Path.GetTempPath(), "envio");
        var workspace = new LocalProcessWorkspace(dataRoot);
        builder.Services.AddSingleton(workspace);
        builder.Eventing.Subscribe<BeforeStartEvent>((@event, _) =>
        {
            var logger = @event.Services.GetRequiredService<ILoggerFactory>().CreateLogger<LocalProcessWorkspace>();
            workspace.SweepAbandonedRuns(logger);
            // Stopped: after DCP has been told to stop everything. Process exit: also when the start itself failed.
            @event.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(() => workspace.CleanUp(logger));
            AppDomain.CurrentDomain.ProcessExit += (_, _) => workspace.CleanUp(logger);
            return Task.CompletedTask;
        });
        return workspace;
    }

    /// <summary>Creates (on first use) and returns the private directory of one resource.</summary>
    public string DirectoryFor(string resourceName)
    {
        if (!Directory.Exists(RunDirectory))
        {
            Directory.CreateDirectory(RunDirectory);
            File.WriteAllText(Path.Combine(RunDirectory, OwnerFileName), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return Directory.CreateDirectory(Path.Combine(RunDirectory, resourceName)).FullName;
    }

    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits for this run's processes to end, kills what remains, and deletes the run directory.</summary>
    public void CleanUp(ILogger logger)
    {
        if (Interlocked.Exchange(ref _cleaned, 1) == 1)
        {
            return;
        }
        Remove(RunDirectory, TimeSpan.FromSeconds(20), logger);
    }

    /// <summary>Removes what earlier runs that crashed (their AppHost is gone) left behind.</summary>
    public void SweepAbandonedRuns(ILogger logger)
    {
        if (!Directory.Exists(DataRoot))
        {
            return;
        }
        foreach (var run in Directory.EnumerateDirectories(DataRoot, "run-*"))
        {
            var ownerFile = Path.Combine(run, OwnerFileName);
            if (File.Exists(ownerFile) && int.TryParse(File.ReadAllText(ownerFile), out var owner) && !IsAlive(owner))
            {
                Remove(run, TimeSpan.Zero, logger);
            }
        }
    }

    /// <summary>Processes started by the run that owns <paramref name="runDirectory"/>, found by their marker.</summary>
    public static IReadOnlyList<int> ProcessesOf(string runDirectory)
    {
        var marker = $"{MarkerVariable}={runDirectory}";
        var found = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid))
            {
                continue;
            }
            try
            {
                if (File.ReadAllText(Path.Combine(entry, "environ")).Split('\0').Contains(marker))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or not ours to read.
            }
        }
        return found;
    }

    private static void Remove(string runDirectory, TimeSpan grace, ILogger logger)
    {
        var deadline = Stopwatch.StartNew();
        while (ProcessesOf(runDirectory).Count > 0 && deadline.Elapsed < grace)
        {
            Thread.Sleep(200);
        }

        foreach (var pid in ProcessesOf(runDirectory))
        {
            LogKillingLeftover(logger, pid, runDirectory);
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
                process.WaitForExit(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                // Already gone.
            }
        }

        for (var attempt = 1; Directory.Exists(runDirectory); attempt++)
        {
            try
            {
                Directory.Delete(runDirectory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (attempt == 10)
                {
                    LogCouldNotDelete(logger, runDirectory, e);
                    return;
                }
                Thread.Sleep(200);
            }
        }
    }

    /// <summary>Owner-only access for files that hold a secret (Unix; processes mode runs on Linux only).</summary>
    public static void MakePrivate(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Killing process {Pid} left running by {RunDirectory}.")]
    private static partial void LogKillingLeftover(ILogger logger, int pid, string runDirectory);

    [LoggerMessage(LogLevel.Error, "Could not delete {RunDirectory}; the next run removes it.")]
    private static partial void LogCouldNotDelete(ILogger logger, string runDirectory, Exception exception);

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
