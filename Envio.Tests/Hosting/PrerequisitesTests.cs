using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>
/// scripts/prerequisites.sh installs what is missing and turns off the system-wide services those packages start:
/// only those, never a broker or database the machine already ran. Run with stand-ins for apt-get and systemctl on
/// the PATH, which record what they were asked to do.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // a bash script
public sealed class PrerequisitesTests : IDisposable
{
    private readonly string _bin = Directory.CreateTempSubdirectory("envio-prerequisites-").FullName;

    [Fact]
    public async Task Installing_something_else_leaves_the_machine_s_own_broker_and_database_running()
    {
        var ct = TestContext.Current.CancellationToken;
        // rabbitmq-server and PostgreSQL are installed here (the suite runs them), and their services run: only
        // docker-compose is missing, so it is the one package installed.
        Stub("systemctl", """
            echo "systemctl $*" >> "$(dirname "$0")/calls"
            case "$1" in
              is-active) exit 0 ;;
              list-unit-files) printf 'rabbitmq-server.service enabled enabled\npostgresql.service enabled enabled\n' ;;
            esac
            """);
        Stub("apt-get", """echo "apt-get $*" >> "$(dirname "$0")/calls" """);
        foreach (var command in new[] { "dotnet", "epmd", "setpriv", "promtool" })
        {
            Stub(command, "exit 0");
        }
        foreach (var tool in new[] { "bash", "env", "id", "awk", "grep", "dirname", "cat" })
        {
            File.CreateSymbolicLink(Path.Combine(_bin, tool), (await Repository.RunAsync("bash", ["-c", $"command -v {tool}"], ct)).Output.Trim());
        }

        var (exitCode, output) = await Repository.RunAsync("env", ["-i", $"PATH={_bin}", "bash", "scripts/prerequisites.sh", "--for-tests"], ct);

        Assert.True(exitCode == 0, output);
        var calls = await File.ReadAllTextAsync(Path.Combine(_bin, "calls"), ct);
        Assert.Contains("install", calls, StringComparison.Ordinal);
        Assert.Contains("docker-compose", calls, StringComparison.Ordinal);
        Assert.DoesNotContain("disable", calls, StringComparison.Ordinal);
        Assert.DoesNotContain("stop", calls, StringComparison.Ordinal);
    }

    private void Stub(string name, string body)
    {
        var path = Path.Combine(_bin, name);
        File.WriteAllText(path, "#!/bin/bash\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_bin, recursive: true);
}
