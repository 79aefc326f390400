using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Envio.AppHost.Hosting;

/// <summary>
/// The private area of one AppHost run for the backing services it starts as local processes: a directory per
/// resource under <c>Envio:Processes:DataRoot</c> (default: the temp folder's <c>envio</c>), its processes,
/// and a clean-up that leaves no process and no data behind, even after a crash (the next run sweeps). The folders
/// hold passwords and keys: the data root and every run directory are private to this user (0700; the database's
/// service account may only pass through, see <see cref="LetGroupPassThrough"/>), and a data root that belongs to
/// someone else (the default lives in the shared temp folder, under a name anyone can guess) is refused.
/// </summary>
internal sealed partial class LocalProcessWorkspace
{
    /// <summary>Set on every process this run starts; children inherit it, so the clean-up finds them all.</summary>
    public const string MarkerVariable = "ENVIO_RUN_DIRECTORY";

    private const string OwnerFileName = "apphost.pid";
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private readonly Lock _preparing = new();
    private bool _rootChecked;
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
        EnsurePrivateDataRoot();
        if (!Directory.Exists(RunDirectory))
        {
            CreatePrivateDirectory(RunDirectory);
            File.WriteAllText(Path.Combine(RunDirectory, OwnerFileName), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return CreatePrivateDirectory(Path.Combine(RunDirectory, resourceName));
    }

    /// <summary>
    /// Lets the members of <paramref name="group"/> pass through (not list) the data root and this run's directory:
    /// for a server that runs under its own account (PostgreSQL, when the AppHost runs as root) and must reach its
    /// data directory inside them. Nobody else gains anything.
    /// </summary>
    public void LetGroupPassThrough(string group)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        foreach (var directory in new[] { DataRoot, RunDirectory })
        {
            Run("chgrp", ["--", group, directory]);
            File.SetUnixFileMode(directory, Private | UnixFileMode.GroupExecute);
        }
    }

    /// <summary>
    /// Creates the data root for this user only, or checks that an existing one is this user's (never a symbolic link
    /// planted by someone else) and takes every permission from others. Done once per run, before anything is written.
    /// </summary>
    private void EnsurePrivateDataRoot()
    {
        lock (_preparing)
        {
            if (_rootChecked || OperatingSystem.IsWindows())
            {
                return;
            }
            if (!Directory.Exists(DataRoot) && !File.Exists(DataRoot))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(DataRoot)!);
                try
                {
                    Directory.CreateDirectory(DataRoot, Private);
                }
                catch (IOException)
                {
                    // Created meanwhile (another run, or someone else): the owner check below decides.
                }
            }
            var owner = Run("stat", ["-c", "%u", "--", DataRoot]).Trim(); // of the path itself: a symbolic link is its own owner
            var self = CurrentUserId();
            if (owner != self || new FileInfo(DataRoot).LinkTarget is not null)
            {
                throw new DistributedApplicationException(
                    $"The data root {DataRoot} (Envio:Processes:DataRoot) belongs to user {owner}, not to this user ({self}), or is a " +
                    "symbolic link: whoever owns it could read the passwords and keys written there, or plant files. Remove it, " +
                    "or set Envio:Processes:DataRoot to a folder of your own.");
            }
            // Keep a pass-through for a service account's group (LetGroupPassThrough, by a run still going), nothing more.
            File.SetUnixFileMode(DataRoot, Private | (File.GetUnixFileMode(DataRoot) & UnixFileMode.GroupExecute));
            _rootChecked = true;
        }
    }

    private static string CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return Directory.CreateDirectory(path).FullName;
        }
        var directory = Directory.CreateDirectory(path, Private);
        File.SetUnixFileMode(path, Private); // also when it existed: a restart of the same run
        return directory.FullName;
    }

    /// <summary>The effective user id of this process (the second field of <c>Uid:</c> in /proc/self/status).</summary>
    private static string CurrentUserId() =>
        File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal))
            .Split('\t', StringSplitOptions.RemoveEmptyEntries)[2];

    private static string Run(string command, string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(command, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })
            ?? throw new DistributedApplicationException($"Could not start {command}.");
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? output
            : throw new DistributedApplicationException($"{command} {string.Join(' ', arguments)} failed ({process.ExitCode}): {error.Trim()}");
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
        EnsurePrivateDataRoot(); // never sweep (kill, delete) in someone else's folder
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

    /// <summary>
    /// Writes a file that holds a secret, owner-only (0600) from its creation: a file written first and restricted
    /// afterwards is readable by anyone for a moment. A file already there is replaced, never reused with its mode.
    /// </summary>
    public static async Task WriteSecretFileAsync(string path, string content, CancellationToken cancellationToken)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        await using var stream = new FileStream(path, options);
        await using var writer = new StreamWriter(stream);
        await writer.WriteAsync(content.AsMemory(), cancellationToken);
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
