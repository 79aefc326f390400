using Microsoft.Extensions.Configuration;

namespace Envio.AppHost.Hosting;

/// <summary>The Debian binaries the processes mode runs, with one clear error naming the package when one is missing.</summary>
internal static class LocalBinaries
{
    public static string RabbitMQServer(IConfiguration configuration) => Require(configuration,
        "Envio:Processes:RabbitMQServer", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], "rabbitmq-server");

    public static string Epmd(IConfiguration configuration) => Require(configuration,
        "Envio:Processes:Epmd", ["/usr/bin/epmd", "/usr/lib/erlang/bin/epmd"], "erlang-base (installed with rabbitmq-server)");

    /// <summary>The bin folder of the newest PostgreSQL installed (Debian keeps each major under /usr/lib/postgresql).</summary>
    public static string PostgresBin(IConfiguration configuration)
    {
        var installed = Directory.Exists("/usr/lib/postgresql")
            ? Directory.EnumerateDirectories("/usr/lib/postgresql")
                .Select(d => Path.Combine(d, "bin"))
                .Where(bin => File.Exists(Path.Combine(bin, "postgres")))
                .OrderByDescending(bin => int.TryParse(Path.GetFileName(Path.GetDirectoryName(bin)), out var major) ? major : 0)
            : Enumerable.Empty<string>();
        var postgres = Require(configuration, "Envio:Processes:PostgresBin",
            installed.Select(bin => Path.Combine(bin, "postgres")), "postgresql", fileInConfiguredFolder: "postgres");
        return Path.GetDirectoryName(postgres)!;
    }

    private static string Require(
        IConfiguration configuration, string key, IEnumerable<string> candidates, string package, string? fileInConfiguredFolder = null)
    {
        if (configuration[key] is { Length: > 0 } configured)
        {
            var path = fileInConfiguredFolder is null ? configured : Path.Combine(configured, fileInConfiguredFolder);
            return File.Exists(path) ? path : throw Missing($"{path} (from {key})", package);
        }
        var candidateList = candidates.ToList();
        return candidateList.FirstOrDefault(File.Exists)
            ?? throw Missing(candidateList.Count > 0 ? string.Join(" or ", candidateList) : key, package);
    }

    private static DistributedApplicationException Missing(string what, string package) =>
        Missing(what, package, OperatingSystem.IsLinux());

    /// <summary>
    /// On Windows or macOS (F5 without Docker) an apt-get hint would send the reader the wrong way: there the only
    /// ways forward are a container runtime or existing servers.
    /// </summary>
    internal static DistributedApplicationException Missing(string what, string package, bool onLinux) => new(onLinux
        ? $"Envio runs the broker and the database as local processes (no container runtime answered), but {what} " +
          $"was not found. Install it with: sudo apt-get install -y {package} — or start Docker/Podman, " +
          "or point the AppHost at existing servers with ConnectionStrings:messaging and ConnectionStrings:enviodb."
        : "No container runtime answered, and processes mode needs Linux (Debian/Ubuntu packages); start Docker or Podman, " +
          "or point the AppHost at existing servers with ConnectionStrings:messaging and ConnectionStrings:enviodb.");
}
