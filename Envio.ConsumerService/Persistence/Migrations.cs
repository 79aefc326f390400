using System.Globalization;
using DbUp.Builder;
using DbUp.Engine.Output;

namespace Envio.ConsumerService.Persistence;

/// <summary>
/// The versioned migrations of one engine: the scripts embedded from <c>Persistence/Migrations/&lt;engine&gt;/</c>,
/// applied in name order by DbUp, each in its own transaction, and journaled in <c>schemaversions</c>. The caller
/// holds the engine's migration lock, so replicas starting together take turns.
/// </summary>
internal static class Migrations
{
    /// <summary>
    /// How long a replica waits for another one's migrations (the lock) before it gives up and fails to start: well
    /// beyond a command's default 30 s, since a migration of a large table takes minutes.
    /// </summary>
    public static readonly TimeSpan LockWait = TimeSpan.FromMinutes(5);

    /// <summary>The command timeout of the statement that waits for the lock: the wait, and a margin for the answer.</summary>
    public static int LockCommandTimeoutSeconds => (int)(LockWait + TimeSpan.FromSeconds(30)).TotalSeconds;

    public static void Apply(UpgradeEngineBuilder target, string engineFolder, ILogger logger)
    {
        var upgrade = target
            .WithScriptsEmbeddedInAssembly(typeof(Migrations).Assembly,
                name => name.Contains($".Migrations.{engineFolder}.", StringComparison.Ordinal))
            .WithTransactionPerScript()
            .LogTo(new DbUpLog(logger))
            .Build()
            .PerformUpgrade();
        if (!upgrade.Successful)
        {
            throw new InvalidOperationException($"Migration {upgrade.ErrorScript?.Name} failed.", upgrade.Error);
        }
    }
}

/// <summary>DbUp's progress into the service's log (and so into the dashboard).</summary>
internal sealed partial class DbUpLog(ILogger logger) : IUpgradeLog
{
    public void LogTrace(string format, params object[] args) => Log(LogLevel.Trace, null, format, args);

    public void LogDebug(string format, params object[] args) => Log(LogLevel.Debug, null, format, args);

    public void LogInformation(string format, params object[] args) => Log(LogLevel.Information, null, format, args);

    public void LogWarning(string format, params object[] args) => Log(LogLevel.Warning, null, format, args);

    public void LogError(string format, params object[] args) => Log(LogLevel.Error, null, format, args);

    public void LogError(Exception ex, string format, params object[] args) => Log(LogLevel.Error, ex, format, args);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1873", Justification = "Guarded by IsEnabled.")]
    private void Log(LogLevel level, Exception? exception, string format, object[] args)
    {
        if (logger.IsEnabled(level))
        {
            LogMigration(logger, level, string.Format(CultureInfo.InvariantCulture, format, args), exception);
        }
    }

    [LoggerMessage("Migrations: {Message}")]
    private static partial void LogMigration(ILogger logger, LogLevel level, string message, Exception? exception);
}
