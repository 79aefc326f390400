using Envio.AppHost.Hosting;

namespace Envio.Tests.Support;

/// <summary>
/// A private SQL Server wire-protocol server (../shared/tds: Babelfish for PostgreSQL) that a test may stop and start
/// again, for outages. It keeps its data and its connection string across a stop.
/// </summary>
public sealed class TdsServer : IAsyncDisposable
{
    private readonly string _directory;

    private TdsServer(string directory, string connectionString) =>
        (_directory, ConnectionString) = (directory, connectionString);

    public string ConnectionString { get; }

    /// <summary>The folder with <c>start</c> and <c>stop</c>: <c>ENVIO_TEST_TDS</c>, or ../shared/tds beside the checkout.</summary>
    public static string? Folder { get; } = new[]
    {
        Environment.GetEnvironmentVariable("ENVIO_TEST_TDS"),
        Path.Combine(Repository.Root, "..", "shared", "tds"),
    }.FirstOrDefault(folder => folder is { Length: > 0 } && File.Exists(Path.Combine(folder, "start")));

    public static string? Unavailable => Folder is null
        ? "No TDS server to start and stop here (../shared/tds or ENVIO_TEST_TDS)." : null;

    public static async Task<TdsServer> StartAsync(CancellationToken ct)
    {
        var directory = Path.Combine(Path.GetTempPath(), "envio-tests-tds", Guid.NewGuid().ToString("N")[..12]);
        // Ports below the ephemeral range, as the AppHost's servers have: no client's connection can take them while
        // the server is stopped for an outage and started again on them.
        var (tds, postgres) = (LoopbackPorts.Free(), LoopbackPorts.Free());
        var output = await RunAsync("start", ["--port", $"{tds}", "--pg-port", $"{postgres}", "--dir", directory], ct);
        // Its one line on stdout; progress goes to stderr, as lines of "envio-tds: …".
        return new TdsServer(directory, output.Split('\n').Single(line => line.StartsWith("Server=", StringComparison.Ordinal)).Trim());
    }

    /// <summary>A fast shutdown: connected clients are cut off. The data stays for <see cref="ResumeAsync"/>.</summary>
    public Task StopAsync(CancellationToken ct) => RunAsync("stop", ["--keep", "--dir", _directory], ct);

    /// <summary>Starts the stopped server again, on the same ports, with the same data.</summary>
    public Task ResumeAsync(CancellationToken ct) => RunAsync("start", ["--dir", _directory], ct);

    public async ValueTask DisposeAsync()
    {
        await RunAsync("stop", ["--dir", _directory], CancellationToken.None);
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    /// <summary>Runs one of the folder's scripts; returns what it printed (start prints the connection string).</summary>
    private static async Task<string> RunAsync(string script, string[] arguments, CancellationToken ct)
    {
        var (exitCode, output) = await Repository.RunAsync("bash", [Path.Combine(Folder!, script), .. arguments], ct);
        Assert.True(exitCode == 0, $"tds/{script} failed ({exitCode}):\n{output}");
        return output;
    }
}
