using System.Diagnostics;
using Microsoft.Data.SqlClient;

namespace Envio.Benchmark;

/// <summary>
/// The SQL Server the benchmark measures: the one given with <c>--sqlserver</c>, else <c>ENVIO_TEST_SQLSERVER</c> (what
/// CI and the tests export), else a private Babelfish instance from <c>shared/tds</c> next to the repository, started
/// for this run and stopped with it. The rows go into a database of the run's own, created here and dropped on
/// dispose, so a shared server keeps nothing of the run.
/// </summary>
internal sealed class SqlServerTarget : IAsyncDisposable
{
    public const string Variable = "ENVIO_TEST_SQLSERVER";

    private readonly string? _stopScript;
    private bool _created;
    private int _stopped;

    private SqlServerTarget(string serverConnectionString, string source, string? instanceDirectory, string? stopScript)
    {
        var database = $"envio_bench_{Guid.NewGuid():N}"[..24];
        ConnectionString = new SqlConnectionStringBuilder(serverConnectionString) { InitialCatalog = database }.ConnectionString;
        Source = source;
        InstanceDirectory = instanceDirectory ?? TdsInstanceListeningOn(serverConnectionString);
        _stopScript = stopScript;
        if (_stopScript is not null)
        {
            // Also when the run is cut short (Ctrl+C, SIGTERM): an instance nobody stops keeps its port and processes.
            AppDomain.CurrentDomain.ProcessExit += (_, _) => StopInstance();
        }
    }

    /// <summary>The benchmark's own database on the server.</summary>
    public string ConnectionString { get; }

    public string DatabaseName => new SqlConnectionStringBuilder(ConnectionString).InitialCatalog;

    /// <summary>Where the server came from, for the report.</summary>
    public string Source { get; }

    /// <summary>
    /// The Babelfish instance's directory when the server is one on this machine (its processes' CPU is then counted);
    /// <c>null</c> for any other server.
    /// </summary>
    public string? InstanceDirectory { get; }

    /// <summary>The server and the run's empty database on it; <c>null</c> with the reason when there is none to measure.</summary>
    public static async Task<(SqlServerTarget? Target, string? Skipped)> FindAsync(string? option, CancellationToken ct)
    {
        SqlServerTarget target;
        if (option is { Length: > 0 })
        {
            target = new SqlServerTarget(option, "--sqlserver", null, null);
        }
        else if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } exported)
        {
            target = new SqlServerTarget(exported, Variable, null, null);
        }
        else if (TdsScript("start") is not { } start || TdsScript("stop") is not { } stop)
        {
            return (null, $"no --sqlserver, no {Variable}, and no shared/tds/start next to the repository to start one");
        }
        else
        {
            var directory = Directory.CreateTempSubdirectory("envio-bench-tds-").FullName;
            var (exitCode, output, errors) = await RunAsync(start, ["--port", "0", "--pg-port", "0", "--dir", directory], ct);
            if (exitCode != 0 || output.Trim() is not { Length: > 0 } started)
            {
                await RunAsync(stop, ["--dir", directory], CancellationToken.None);
                return (null, $"shared/tds/start failed (exit code {exitCode}): {errors.Trim()}");
            }
            target = new SqlServerTarget(started, $"a private Babelfish instance (shared/tds, {directory})", directory, stop);
        }

        try
        {
            await target.CreateDatabaseAsync(ct);
            return (target, null);
        }
        catch (SqlException e) when (target._stopScript is null)
        {
            // A server that was given but does not answer is a skip with its reason, as no server at all is.
            await target.DisposeAsync();
            return (null, $"the SQL Server from {target.Source} cannot be used: {e.Message}");
        }
        catch
        {
            await target.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_created)
            {
                return; // a server that did not answer: nothing of the run's is there
            }
            // Pooled connections (the benchmark's) would keep the database in use; nothing else is connected by now.
            SqlConnection.ClearAllPools();
            await using var connection = await OpenMasterAsync(CancellationToken.None);
            await using var drop = new SqlCommand(OnDatabase("IF DB_ID(@name) IS NOT NULL", "DROP DATABASE"), connection);
            drop.Parameters.AddWithValue("@name", DatabaseName);
            await drop.ExecuteNonQueryAsync();
        }
        catch (SqlException e)
        {
            // The instance is stopped below anyway; on a given server the database is left, and said so.
            Console.Error.WriteLine($"Could not drop the benchmark's database {DatabaseName}: {e.Message}");
        }
        finally
        {
            StopInstance();
        }
    }

    private async Task CreateDatabaseAsync(CancellationToken ct)
    {
        await using var connection = await OpenMasterAsync(ct);
        await using var create = new SqlCommand(OnDatabase("IF DB_ID(@name) IS NULL", "CREATE DATABASE"), connection);
        create.Parameters.AddWithValue("@name", DatabaseName);
        await create.ExecuteNonQueryAsync(ct);
        _created = true;
    }

    // A database name cannot be a parameter; QUOTENAME makes it one identifier (Babelfish takes no expression in EXEC()).
    private static string OnDatabase(string condition, string statement) => $"""
        {condition}
        BEGIN
            DECLARE @statement nvarchar(300) = N'{statement} ' + QUOTENAME(@name);
            EXEC sys.sp_executesql @statement;
        END
        """;

    private async Task<SqlConnection> OpenMasterAsync(CancellationToken ct)
    {
        var connection = new SqlConnection(new SqlConnectionStringBuilder(ConnectionString) { InitialCatalog = "master" }.ConnectionString);
        await connection.OpenAsync(ct);
        return connection;
    }

    private void StopInstance()
    {
        if (_stopScript is not null && InstanceDirectory is not null && Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            using var stop = Process.Start(new ProcessStartInfo(_stopScript, ["--dir", InstanceDirectory]) { RedirectStandardError = true });
            stop?.StandardError.ReadToEnd();
            stop?.WaitForExit();
        }
    }

    private static async Task<(int ExitCode, string Output, string Errors)> RunAsync(string file, string[] arguments, CancellationToken ct)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var errors = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return (process.ExitCode, await output, await errors);
    }

    // <repository>/../shared/tds/<name>: the repository is the folder holding Directory.Packages.props, above the
    // benchmark's binaries.
    private static string? TdsScript(string name)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Directory.Packages.props")))
            {
                var script = Path.GetFullPath(Path.Combine(directory.FullName, "..", "shared", "tds", name));
                return File.Exists(script) ? script : null;
            }
        }
        return null;
    }

    // A shared/tds instance on this machine runs `postgres -D <instance>/data`, and <instance>/envio-tds.state names
    // its TDS port: the one the connection string points at is the server whose processes are counted.
    private static string? TdsInstanceListeningOn(string connectionString)
    {
        var dataSource = new SqlConnectionStringBuilder(connectionString).DataSource;
        if (dataSource.Split(',') is not [var host, var port] || host.Replace("tcp:", "", StringComparison.Ordinal) is not ("127.0.0.1" or "localhost"))
        {
            return null;
        }
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                var command = File.ReadAllText(Path.Combine(entry, "cmdline")).Split('\0');
                var data = Array.IndexOf(command, "-D") is var at and >= 0 && at + 1 < command.Length ? command[at + 1] : null;
                if (data is null || File.ReadAllText(Path.Combine(entry, "comm")).Trim() != "postgres")
                {
                    continue;
                }
                var instance = Path.GetDirectoryName(data.TrimEnd('/'));
                var state = instance is null ? null : Path.Combine(instance, "envio-tds.state");
                if (state is not null && File.Exists(state)
                    && File.ReadLines(state).Contains($"tds_port={port.Trim()}", StringComparer.Ordinal))
                {
                    return instance;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or not ours to read.
            }
        }
        return null;
    }
}
