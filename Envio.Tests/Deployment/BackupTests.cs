using System.Text.RegularExpressions;
using Envio.Tests.Support;
using Microsoft.SqlServer.TransactSql.ScriptDom;

namespace Envio.Tests.Deployment;

/// <summary>
/// The backup and restore scripts of deploy/compose: they parse, their T-SQL is T-SQL, they run sqlcmd inside the
/// container the way the consumer connects and never with a password on a command line, and the guide tells an
/// operator when and how to run each. check-certs.sh finds a certificate about to expire.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // bash scripts
public sealed partial class BackupTests
{
    private static readonly string[] Scripts = ["backup.sh", "restore.sh", "check-certs.sh", "make-secrets.sh", "make-certs.sh"];

    [Fact]
    public async Task Every_script_parses()
    {
        foreach (var script in Scripts)
        {
            var (exitCode, output) = await Repository.RunAsync("bash", ["-n", ComposeFile.PathOf(script)], TestContext.Current.CancellationToken);
            Assert.True(exitCode == 0, $"{script}: {output}");
        }
    }

    /// <summary>Each T-SQL file sqlcmd runs, its $(variables) filled as the scripts fill them, is valid T-SQL.</summary>
    [Fact]
    public void Every_sql_file_parses_as_transact_sql()
    {
        var files = Directory.GetFiles(ComposeFile.PathOf("sqlserver"), "*.sql");
        Assert.Contains(files, f => f.EndsWith("backup-full.sql", StringComparison.Ordinal));
        foreach (var file in files)
        {
            var sql = Variable().Replace(File.ReadAllText(file), m => m.Groups[1].Value switch
            {
                "BACKUP_COMPRESSION" => "COMPRESSION",
                "LOG_ALERT_PERCENT" => "80",
                var name => name.ToLowerInvariant(),
            });
            var parser = new TSql160Parser(initialQuotedIdentifiers: true);
            using var reader = new StringReader(sql);
            parser.Parse(reader, out var errors);
            Assert.True(errors.Count == 0, $"{Path.GetFileName(file)}: {string.Join("; ", errors.Select(e => $"line {e.Line}: {e.Message}"))}");
        }
    }

    /// <summary>The recovery model is chosen (FULL, with log backups that free the log), and the backups are verified.</summary>
    [Fact]
    public void The_database_is_backed_up_in_full_recovery_with_checksums_and_the_log_is_watched()
    {
        var full = File.ReadAllText(ComposeFile.PathOf("sqlserver", "backup-full.sql"));
        Assert.Contains("SET RECOVERY FULL", full, StringComparison.Ordinal);
        Assert.Contains("CHECKSUM", full, StringComparison.Ordinal);
        Assert.Contains("RESTORE VERIFYONLY", full, StringComparison.Ordinal);
        var log = File.ReadAllText(ComposeFile.PathOf("sqlserver", "backup-log.sql"));
        Assert.Contains("BACKUP LOG", log, StringComparison.Ordinal);
        Assert.Contains("sys.dm_db_log_space_usage", log, StringComparison.Ordinal);
        Assert.Contains("RAISERROR", log, StringComparison.Ordinal); // sqlcmd -b then fails the job
        // The backups land outside the data volume, on the host, where they can be copied off.
        Assert.Contains("./backup/sqlserver:/var/opt/mssql/backup", ComposeFile.Sequence(ComposeFile.Service("sqlserver"), "volumes"));
    }

    /// <summary>
    /// What backup.sh log hands the sqlserver container, seen through a stand-in for docker: sqlcmd over TLS as the
    /// consumer connects, sa's password from its file inside the container, the log script on stdin, the file named.
    /// </summary>
    [Fact]
    public async Task Backup_runs_sqlcmd_in_the_container_in_the_consumers_tls_mode_with_no_password_on_a_command_line()
    {
        var ct = TestContext.Current.CancellationToken;
        var work = Directory.CreateTempSubdirectory("envio-backup-").FullName;
        try
        {
            foreach (var file in new[] { "backup.sh", "sqlserver/backup-log.sql", "sqlserver/backup-full.sql" })
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(work, file))!);
                File.Copy(ComposeFile.PathOf(file.Split('/')), Path.Combine(work, file));
            }
            var bin = Directory.CreateDirectory(Path.Combine(work, "bin")).FullName;
            await File.WriteAllTextAsync(Path.Combine(bin, "docker"), "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/arguments\"\ncat > \"$(dirname \"$0\")/stdin\"\n", ct);
            File.SetUnixFileMode(Path.Combine(bin, "docker"), UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);

            var (exitCode, output) = await Repository.RunAsync("bash", [Path.Combine(work, "backup.sh"), "log"], ct,
                new Dictionary<string, string> { ["PATH"] = $"{bin}:{Environment.GetEnvironmentVariable("PATH")}" });
            Assert.True(exitCode == 0, output);

            var arguments = await File.ReadAllLinesAsync(Path.Combine(bin, "arguments"), ct);
            Assert.Equal(["compose", "exec", "-T"], arguments[..3]);
            Assert.Contains(arguments, a => Regex.IsMatch(a, @"^BACKUP_FILE=/var/opt/mssql/backup/enviodb-\d{8}T\d{6}Z-log\.trn$"));
            Assert.Contains("LOG_ALERT_PERCENT=80", arguments);
            var command = arguments[^1];
            Assert.Contains("-S tcp:sqlserver,1433", command, StringComparison.Ordinal);
            Assert.Contains($" {Envio.AppHost.Hosting.SqlServerDeployment.SqlcmdEncryption} ", command, StringComparison.Ordinal);
            Assert.Contains("SQLCMDPASSWORD=\"$(cat /run/secrets/sqlserver-password)\"", command, StringComparison.Ordinal);
            Assert.DoesNotMatch(@"(^|\s)-[PC](\s|$)", command);
            Assert.Equal(await File.ReadAllTextAsync(ComposeFile.PathOf("sqlserver", "backup-log.sql"), ct), await File.ReadAllTextAsync(Path.Combine(bin, "stdin"), ct));
            Assert.Matches(@"backup/sqlserver/enviodb-\d{8}T\d{6}Z-log\.trn", output);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Theory]
    [InlineData(10, 1, "within 30 days")]
    [InlineData(397, 0, "valid until")]
    public async Task Check_certs_fails_for_a_certificate_that_expires_within_30_days(int days, int expectedExit, string expected)
    {
        var ct = TestContext.Current.CancellationToken;
        var work = Directory.CreateTempSubdirectory("envio-certs-").FullName;
        try
        {
            File.Copy(ComposeFile.PathOf("make-certs.sh"), Path.Combine(work, "make-certs.sh"));
            File.Copy(ComposeFile.PathOf("check-certs.sh"), Path.Combine(work, "check-certs.sh"));
            var (exitCode, output) = await Repository.RunAsync("bash", [Path.Combine(work, "make-certs.sh")], ct,
                new Dictionary<string, string> { ["CERT_DAYS"] = days.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            Assert.True(exitCode == 0, output);

            (exitCode, output) = await Repository.RunAsync("bash", [Path.Combine(work, "check-certs.sh")], ct);
            Assert.Equal(expectedExit, exitCode);
            Assert.Contains("certs/messaging.crt: " + (expectedExit == 0 ? "valid until" : "expires"), output, StringComparison.Ordinal);
            Assert.Contains(expected, output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>The guide gives the schedule and the drill as commands, and names the recovery model and why.</summary>
    [Fact]
    public void The_guide_schedules_the_backups_and_writes_the_restore_drill_as_commands()
    {
        var guide = File.ReadAllText(Path.Combine(Repository.Root, "deploy", "README.md"));
        foreach (var command in new[] { "./backup.sh full", "./backup.sh log", "./backup.sh broker", "./backup.sh secrets", "./backup.sh all", "./restore.sh drill", "./restore.sh database", "./check-certs.sh" })
        {
            Assert.Contains(command, guide, StringComparison.Ordinal);
        }
        Assert.Matches(@"\*/15 \* \* \* \*[^\n]*backup\.sh log", guide); // the crontab lines
        Assert.Contains("recovery model", guide, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("BACKUP_COPY_TO", guide, StringComparison.Ordinal);
        Assert.Matches(@"Upgrade[\s\S]{0,800}\./backup\.sh all", guide); // a backup before every upgrade
    }

    [GeneratedRegex(@"\$\(([A-Z_]+)\)")]
    private static partial Regex Variable();
}
