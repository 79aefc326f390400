using System.Globalization;

namespace Envio.Benchmark;

/// <summary>
/// Where the time goes: CPU seconds each part of the stack spent during a phase, from /proc (user + system time of
/// every process of the run, found by the run's marker variable), next to the wall time. On a machine where the broker,
/// the database, both services and the load generator share the cores, a phase whose parts add up to all the cores
/// cannot go faster by waiting less, only by spending less CPU per message. A SQL Server on this machine is counted when
/// it is a shared/tds instance (Babelfish: PostgreSQL processes, whose postmaster runs <c>-D &lt;instance&gt;/data</c>).
/// </summary>
internal sealed class CpuCounters(string dataRoot, string? sqlServerInstance = null)
{
    public static readonly string[] Parts = ["API", "consumer", "RabbitMQ", "PostgreSQL", "SQL Server", "benchmark + AppHost"];

    private static readonly string[] Databases = ["PostgreSQL", "SQL Server"];

    private static readonly double TicksPerSecond = 100; // USER_HZ: 100 on every Linux this runs on

    public Dictionary<string, double> Snapshot()
    {
        var processes = new List<(int Pid, int Parent, string? Part, double Seconds)>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid))
            {
                continue;
            }
            try
            {
                // Fields after the command name (which may hold spaces): ppid is field 4, utime 14, stime 15.
                var stat = File.ReadAllText(Path.Combine(entry, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var cpuSeconds = (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
                processes.Add((pid, int.Parse(fields[1], CultureInfo.InvariantCulture), PartOf(pid, entry), cpuSeconds));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // Gone meanwhile.
            }
        }
        // PostgreSQL's backends (Babelfish's too) rewrite their command line and environment (the process title): they
        // belong where their parent, the postmaster, does.
        var postmasters = processes.Where(p => Databases.Contains(p.Part)).ToDictionary(p => p.Pid, p => p.Part);
        var seconds = Parts.ToDictionary(p => p, _ => 0.0);
        foreach (var process in processes)
        {
            if ((process.Part ?? postmasters.GetValueOrDefault(process.Parent)) is { } part)
            {
                seconds[part] += process.Seconds;
            }
        }
        return seconds;
    }

    private string? PartOf(int pid, string entry)
    {
        if (pid == Environment.ProcessId)
        {
            return "benchmark + AppHost";
        }
        var command = File.ReadAllText(Path.Combine(entry, "cmdline")).Replace('\0', ' ');
        var name = File.ReadAllText(Path.Combine(entry, "comm")).Trim();
        if (name is "postgres")
        {
            // The postmaster: -D <data dir>.
            return command.Contains(dataRoot, StringComparison.Ordinal) ? "PostgreSQL"
                : sqlServerInstance is not null && command.Contains($" {Path.Combine(sqlServerInstance, "data")} ", StringComparison.Ordinal) ? "SQL Server"
                : null;
        }
        if (!File.ReadAllText(Path.Combine(entry, "environ")).Contains(dataRoot, StringComparison.Ordinal))
        {
            return null; // not this run's
        }
        return command.Contains("/Envio.ApiService ", StringComparison.Ordinal) ? "API"
            : command.Contains("/Envio.ConsumerService ", StringComparison.Ordinal) ? "consumer"
            : name is "beam.smp" or "epmd" or "erl_child_setup" or "inet_gethost" ? "RabbitMQ"
            : null; // `dotnet run` wrappers and the like: idle
    }

    public static Phase Since(Dictionary<string, double> before, Dictionary<string, double> after, string name, TimeSpan wall, int messages) =>
        new(name, wall.TotalSeconds, messages, Parts.ToDictionary(p => p, p => Math.Round(after[p] - before[p], 2)));

    internal sealed record Phase(string Name, double WallSeconds, int Messages, Dictionary<string, double> CpuSeconds)
    {
        public double TotalCpuSeconds => CpuSeconds.Values.Sum();

        /// <summary>CPU microseconds the whole machine spent per message in this phase.</summary>
        public double MicrosecondsPerMessage => TotalCpuSeconds / Messages * 1e6;

        public double Utilisation => TotalCpuSeconds / (WallSeconds * Environment.ProcessorCount);
    }
}
