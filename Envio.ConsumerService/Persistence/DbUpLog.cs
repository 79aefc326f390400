using System.Globalization;
using DbUp.Engine.Output;

namespace Envio.ConsumerService.Persistence;

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
