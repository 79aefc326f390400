using System.Net.Sockets;
using System.Reflection;
using Envio.ConsumerService.Messaging;
using Microsoft.Data.SqlClient;
using Npgsql;

namespace Envio.Tests.Messaging;

/// <summary>
/// Only what the data causes is permanent (the message goes to the error queue); everything else, and anything
/// unknown, is transient (retried). A database that restarts, fails over or times out must never dead-letter orders.
/// </summary>
public sealed class FailureClassifierTests
{
    [Theory]
    [InlineData(547)]  // FOREIGN KEY or CHECK constraint
    [InlineData(515)]  // NULL into a NOT NULL column
    [InlineData(2628)] // truncated (SQL Server 2019+)
    [InlineData(8152)] // truncated
    [InlineData(8115)] // arithmetic overflow
    [InlineData(220)]  // value out of range for its type
    [InlineData(245)]  // conversion failed
    [InlineData(8114)] // error converting a data type
    public void Sql_server_errors_the_data_causes_are_permanent(int number) =>
        Assert.False(FailureClassifier.IsTransient(SqlServerError(number)));

    [Theory]
    [InlineData(-2)]       // command timeout
    [InlineData(258)]      // wait timeout
    [InlineData(0)]        // a broken connection
    [InlineData(121)]      // semaphore timeout (network)
    [InlineData(10053)]    // connection aborted
    [InlineData(10054)]    // connection reset
    [InlineData(10060)]    // connection timed out
    [InlineData(10061)]    // connection refused
    [InlineData(64)]       // network name no longer available
    [InlineData(233)]      // no process at the other end of the pipe
    [InlineData(18456)]    // login failed (a server still starting)
    [InlineData(4060)]     // cannot open the database (restarting, failing over)
    [InlineData(40613)]    // database unavailable (Azure failover)
    [InlineData(976)]      // availability group secondary not readable
    [InlineData(983)]      // availability replica not in a readable role
    [InlineData(9002)]     // transaction log full
    [InlineData(1222)]     // lock request timeout
    [InlineData(1205)]     // deadlock victim
    [InlineData(701)]      // out of memory
    [InlineData(2627)]     // duplicate key: a race with another consumer; tried again, the insert skips it
    [InlineData(2601)]     // duplicate key in a unique index: the same
    [InlineData(33557097)] // Babelfish's number for errors it does not map
    [InlineData(50000)]    // anything unknown
    public void Every_other_sql_server_error_is_transient(int number) =>
        Assert.True(FailureClassifier.IsTransient(SqlServerError(number)));

    [Fact]
    public void A_sql_server_error_list_holding_a_data_error_is_permanent() =>
        // SQL Server follows a truncation with 3621, "the statement has been terminated".
        Assert.False(FailureClassifier.IsTransient(SqlServerError(8152, 3621)));

    [Theory]
    [InlineData("23503")] // foreign key violation
    [InlineData("23514")] // check violation
    [InlineData("23502")] // not null violation
    [InlineData("22001")] // string too long
    [InlineData("22003")] // numeric out of range
    [InlineData("22P02")] // invalid text representation
    public void Postgres_data_errors_are_permanent(string sqlState) =>
        Assert.False(FailureClassifier.IsTransient(new PostgresException("x", "ERROR", "ERROR", sqlState)));

    [Theory]
    [InlineData("40001")] // serialization failure
    [InlineData("40P01")] // deadlock
    [InlineData("08006")] // connection failure
    [InlineData("57P01")] // admin shutdown (also a session ended inside a commit: its outcome unknown)
    [InlineData("25006")] // read-only transaction (a demoted primary or a standby after a failover)
    [InlineData("57P03")] // cannot connect now (starting up)
    [InlineData("53300")] // too many connections
    [InlineData("53100")] // disk full
    [InlineData("28P01")] // password authentication failed (credentials being rotated)
    [InlineData("3D000")] // database does not exist (yet)
    [InlineData("42P01")] // undefined table (a migration not applied yet)
    [InlineData("23505")] // duplicate key: a race with another consumer
    [InlineData("XX000")] // internal error
    public void Every_other_postgres_state_is_transient(string sqlState) =>
        Assert.True(FailureClassifier.IsTransient(new PostgresException("x", "ERROR", "ERROR", sqlState)));

    [Fact]
    public void Lost_connections_timeouts_and_anything_unknown_are_transient()
    {
        Assert.True(FailureClassifier.IsTransient(new NpgsqlException("x", new SocketException((int)SocketError.ConnectionRefused))));
        Assert.True(FailureClassifier.IsTransient(new TimeoutException()));
        Assert.True(FailureClassifier.IsTransient(new InvalidOperationException("wrapped", new IOException("reset"))));
        Assert.True(FailureClassifier.IsTransient(new InvalidOperationException("a bug, or a pool timeout")));
    }

    [Fact]
    public void A_data_error_wrapped_in_another_exception_is_still_permanent() =>
        Assert.False(FailureClassifier.IsTransient(new InvalidOperationException("wrapped", SqlServerError(547))));

    /// <summary>
    /// A SqlException as SqlClient raises it, with one error per number. SqlClient gives it no public constructor;
    /// these are the internal ones of Microsoft.Data.SqlClient 7.
    /// </summary>
    private static SqlException SqlServerError(params int[] numbers)
    {
        const BindingFlags Internal = BindingFlags.NonPublic | BindingFlags.Instance;
        var errors = (SqlErrorCollection)Activator.CreateInstance(typeof(SqlErrorCollection), nonPublic: true)!;
        var add = typeof(SqlErrorCollection).GetMethod("Add", Internal, [typeof(SqlError)])!;
        var errorConstructor = typeof(SqlError).GetConstructor(Internal,
            [typeof(int), typeof(byte), typeof(byte), typeof(string), typeof(string), typeof(string), typeof(int), typeof(Exception), typeof(int)])!;
        foreach (var number in numbers)
        {
            var error = errorConstructor.Invoke([number, (byte)1, (byte)16, "server", $"error {number}", "", 1, null, -1]);
            add.Invoke(errors, [error]);
        }
        var create = typeof(SqlException).GetMethod("CreateException", BindingFlags.NonPublic | BindingFlags.Static,
            [typeof(SqlErrorCollection), typeof(string)])!;
        return (SqlException)create.Invoke(null, [errors, "16.00.0000"])!;
    }
}
