using Microsoft.Data.SqlClient;
using Npgsql;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Whether trying again can help. Only what the data itself causes fails the same way every time: a constraint the
/// row breaks, a value too long, out of range or of the wrong type. That is permanent: the batch is split and the
/// message goes to the error queue. Everything else, known or not (a server restarting or failing over, a login
/// refused during a restart, a lost connection, a timeout, a deadlock, a full log, memory, a bug), is transient:
/// retried, never dead-lettered at first sight. A database restart must not send the stream to the error queue.
/// </summary>
public static class FailureClassifier
{
    /// <summary>SQL Server (and Babelfish) errors that the values of a row cause.</summary>
    private static readonly HashSet<int> SqlServerDataErrors =
    [
        515,  // NULL into a NOT NULL column
        547,  // a FOREIGN KEY or CHECK constraint
        2628, // string or binary data would be truncated in a column (SQL Server 2019+)
        8152, // string or binary data would be truncated
        8115, // arithmetic overflow converting to a type
        220,  // arithmetic overflow for a type (value out of range)
        232,  // arithmetic overflow for a type
        245,  // conversion failed (a value of the wrong type)
        8114, // error converting a data type
        241,  // conversion failed for a date or time
        242,  // a date out of range
        8169, // conversion failed for a uniqueidentifier
    ];

    public static bool IsTransient(Exception exception) => !IsCausedByTheData(exception);

    /// <summary>
    /// PostgreSQL: classes 22 (data exception) and 23 (integrity constraint), except the duplicate key: the stores
    /// absorb stored orders, so one that still escapes is a race with another consumer, and trying again skips it.
    /// SQL Server: the numbers above; its duplicate keys (2627, 2601) are races for the same reason.
    /// </summary>
    private static bool IsCausedByTheData(Exception exception) => exception switch
    {
        PostgresException postgres => postgres.SqlState is not PostgresErrorCodes.UniqueViolation
            && (postgres.SqlState.StartsWith("22", StringComparison.Ordinal) || postgres.SqlState.StartsWith("23", StringComparison.Ordinal)),
        SqlException sql => sql.Errors.Cast<SqlError>().Any(error => SqlServerDataErrors.Contains(error.Number)),
        _ => exception.InnerException is { } inner && IsCausedByTheData(inner),
    };
}
