using System.Net.Sockets;
using Microsoft.Data.SqlClient;
using Npgsql;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Whether trying again can help. Transient: the database or the network is away or busy (connection loss,
/// timeouts, deadlocks, serialization failures, a server shutting down or starting). Everything else (a constraint
/// other than the duplicate key the stores absorb, a value out of range) fails the same way every time: permanent.
/// </summary>
public static class FailureClassifier
{
    // SQL Server: deadlock victim, timeouts, lost or refused connections, resource limits, and Azure's failovers.
    private static readonly HashSet<int> TransientSqlServerErrors =
    [
        -2, 20, 64, 233, 1205, 1222, 4060, 4221, 10053, 10054, 10060, 10928, 10929, 11001, 40143, 40197, 40501, 40540, 40613,
        49918, 49919, 49920,
    ];

    public static bool IsTransient(Exception exception) => exception switch
    {
        PostgresException postgres => IsTransientPostgres(postgres.SqlState),
        NpgsqlException npgsql => npgsql.IsTransient || npgsql.InnerException is IOException or SocketException or TimeoutException,
        SqlException sql => sql.Errors.Cast<SqlError>().Any(e => TransientSqlServerErrors.Contains(e.Number)),
        TimeoutException or IOException or SocketException => true,
        _ => exception.InnerException is { } inner && IsTransient(inner),
    };

    private static bool IsTransientPostgres(string sqlState) =>
        sqlState is "40001" or "40P01" // serialization failure, deadlock
        || sqlState.StartsWith("08", StringComparison.Ordinal) // connection exceptions
        || sqlState.StartsWith("53", StringComparison.Ordinal) // insufficient resources
        || sqlState is "57P01" or "57P02" or "57P03" // admin shutdown, crash shutdown, cannot connect now
        || sqlState is "55P03" or "57014"; // lock not available, query canceled (statement timeout)
}
