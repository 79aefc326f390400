using System.Collections.Concurrent;
using System.Diagnostics;
using Envio.Tests.Support;

namespace Envio.Tests.Deployment;

/// <summary>
/// What deploy/kubernetes/make-secrets.sh creates, read by running it against a stand-in <c>kubectl</c> that finds no
/// Secret and writes each one it is asked to create into a folder (Secret name → key → value).
/// </summary>
internal static class MadeSecrets
{
    private static readonly ConcurrentDictionary<string, Lazy<Task<Dictionary<string, Dictionary<string, string>>>>> Cache = new();

    private const string StandInKubectl = """
        #!/usr/bin/env bash
        set -eu
        [[ " $* " == *" get "* ]] && exit 1
        [[ " $* " == *" secret generic "* ]] || exit 0
        name="" next=0
        for argument in "$@"; do
          if [ "$next" = 1 ]; then name="$argument"; mkdir -p "$MADE/$name"; next=0; continue; fi
          [ "$argument" = generic ] && next=1
          case "$argument" in --from-file=*) pair="${argument#--from-file=}"; cp "${pair#*=}" "$MADE/$name/${pair%%=*}" ;; esac
        done
        """;

    /// <summary><paramref name="mode"/>: <c>trial</c>, or <c>external</c> (with an availability group's listener).</summary>
    public static Task<Dictionary<string, Dictionary<string, string>>> OfAsync(string mode) =>
        Cache.GetOrAdd(mode, m => new Lazy<Task<Dictionary<string, Dictionary<string, string>>>>(() => MakeAsync(m))).Value;

    private static async Task<Dictionary<string, Dictionary<string, string>>> MakeAsync(string mode)
    {
        var work = Directory.CreateTempSubdirectory("envio-k8s-secrets-");
        try
        {
            var bin = Directory.CreateDirectory(Path.Combine(work.FullName, "bin"));
            var made = Directory.CreateDirectory(Path.Combine(work.FullName, "made"));
            var kubectl = Path.Combine(bin.FullName, "kubectl");
            await File.WriteAllTextAsync(kubectl, StandInKubectl.ReplaceLineEndings("\n") + "\n");
            if (!OperatingSystem.IsWindows()) // make-secrets.sh is for the Linux or macOS machine kubectl runs on
            {
                File.SetUnixFileMode(kubectl, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var start = new ProcessStartInfo("bash",
                [Path.Combine(Repository.Root, "deploy", "kubernetes", "make-secrets.sh"), mode, .. mode == "external" ? ["envio-ag.db.example.com"] : Array.Empty<string>()])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.Environment["PATH"] = bin.FullName + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
            start.Environment["MADE"] = made.FullName;
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, $"make-secrets.sh {mode} failed:\n{await output}{await error}");

            return made.GetDirectories().ToDictionary(
                secret => secret.Name,
                secret => secret.GetFiles().ToDictionary(key => key.Name, key => File.ReadAllText(key.FullName)));
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }
}
