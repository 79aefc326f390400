using System.Diagnostics;

namespace Envio.Tests.Support;

/// <summary>The checkout the tests run from, and commands run in it.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    public const string Configuration =
#if DEBUG
        "Debug";
#else
        "Release";
#endif

    /// <summary>Writes the deployment manifest the way ops get it: containers mode, publish.</summary>
    public static async Task GenerateManifestAsync(string outputPath, CancellationToken ct)
    {
        var (exitCode, output) = await RunAsync("dotnet",
            ["run", "--project", Path.Combine(Root, "Envio.AppHost"), "--no-build", "-c", Configuration, "--no-launch-profile",
             "--", "--publisher", "manifest", "--output-path", outputPath, "--Envio:Hosting=containers"], ct);
        Assert.True(exitCode == 0, $"manifest generation failed ({exitCode}):\n{output}");
    }

    /// <summary>Runs a command in the checkout, with <paramref name="environment"/> added to the test process's.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(
        string command, string[] arguments, CancellationToken ct, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(command, arguments)
        {
            WorkingDirectory = Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return (process.ExitCode, await output + await error);
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Envio.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"Envio.sln not found above {AppContext.BaseDirectory}.");
    }
}
