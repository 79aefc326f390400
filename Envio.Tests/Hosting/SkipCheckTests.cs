using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>
/// The positive control of test.sh's skip check (scripts/unexpected-skips.sh) and failure list (scripts/failed-tests.sh):
/// on a report the test runner itself writes, with one skip at the SQL Server gate, one elsewhere and one failure, the
/// check names the second skip and only it, and the list names the failure with its message. Had the report's
/// format changed so that the check matched nothing, every unexpected skip would pass unseen; this fails instead.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // a bash script
public sealed class SkipCheckTests : IDisposable
{
    private readonly string _results = Directory.CreateTempSubdirectory("envio-skip-check-").FullName;

    [Fact]
    public async Task The_skip_check_names_a_skip_outside_the_sql_server_gate_in_the_runner_s_own_report_and_only_it()
    {
        var ct = TestContext.Current.CancellationToken;
        // This test application, run again on the samples alone, with the runner's report as test.sh asks for it.
        var (exitCode, output) = await Repository.RunAsync(Path.Combine(AppContext.BaseDirectory, "Envio.Tests"),
            ["--filter-class", typeof(SkipCheckSamples).FullName!, "--results-directory", _results,
             "--report-xunit", "--report-xunit-filename", "samples.xml"], ct,
            new Dictionary<string, string> { [SkipCheckSamples.Switch] = "1" });
        var report = Path.Combine(_results, "samples.xml");
        Assert.True(File.Exists(report), $"the runner wrote no report ({exitCode}):\n{output}");
        var xml = await File.ReadAllTextAsync(report, ct);
        Assert.Contains(SkipCheckSamples.GatedReason, xml, StringComparison.Ordinal); // both samples did skip

        var (checkExit, named) = await Repository.RunAsync("bash", ["scripts/unexpected-skips.sh", report], ct);

        Assert.True(checkExit == 0, named);
        Assert.Equal(
            [$"{typeof(SkipCheckSamples).FullName}.{nameof(SkipCheckSamples.Skipped_for_another_reason)}"],
            named.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        // test.sh names the failures last, where a long log's kept tail shows them: the sample's name, its message
        // and where it failed.
        var (failedExit, failed) = await Repository.RunAsync("bash", ["scripts/failed-tests.sh", report], ct);
        Assert.True(failedExit == 0, failed);
        var lines = failed.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"{typeof(SkipCheckSamples).FullName}.{nameof(SkipCheckSamples.Failed)}", lines[0]);
        Assert.Contains(lines, line => line.Contains(SkipCheckSamples.FailureMessage, StringComparison.Ordinal));
        Assert.Contains(lines, line => line.TrimStart().StartsWith($"at {typeof(SkipCheckSamples).FullName}.{nameof(SkipCheckSamples.Failed)}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Test_sh_runs_the_skip_check_and_names_the_failures_from_its_report()
    {
        var script = await File.ReadAllTextAsync(Path.Combine(Repository.Root, "test.sh"), TestContext.Current.CancellationToken);
        Assert.Contains("scripts/unexpected-skips.sh TestResults/envio-tests.xml", script, StringComparison.Ordinal);
        Assert.Contains("scripts/failed-tests.sh TestResults/envio-tests.xml", script, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_results, recursive: true);
}

/// <summary>
/// Samples for <see cref="SkipCheckTests"/>: they skip or fail only when it runs them (its switch set), and otherwise pass
/// without doing anything, so the suite's own report has no skip of theirs.
/// </summary>
public sealed class SkipCheckSamples
{
    public const string Switch = "ENVIO_SKIP_CHECK_SAMPLES";
    public const string GatedReason = "ENVIO_TEST_SQLSERVER is not set (a sample of the SQL Server gate's reason)";

    private static bool Sampling => Environment.GetEnvironmentVariable(Switch) == "1";

    [Fact]
    public void Skipped_at_the_sql_server_gate() => Assert.SkipWhen(Sampling, GatedReason);

    [Fact]
    public void Skipped_for_another_reason() => Assert.SkipWhen(Sampling, "docker-compose is not installed (a sample of any other reason)");

    [Fact]
    public void Run() // a test that ran: a session of skips alone may count as having run nothing
    {
    }

    [Fact]
    public void Failed() => Assert.False(Sampling, FailureMessage);

    public const string FailureMessage = "a sample failure's message";
}
