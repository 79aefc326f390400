using System.Net.Sockets;
using Envio.ConsumerService.Messaging;
using Npgsql;

namespace Envio.Tests.Messaging;

/// <summary>Transient means "trying again can help"; everything else goes to the error queue at once.</summary>
public sealed class FailureClassifierTests
{
    [Theory]
    [InlineData("40001")] // serialization failure
    [InlineData("40P01")] // deadlock
    [InlineData("08006")] // connection failure
    [InlineData("57P01")] // admin shutdown
    [InlineData("57P03")] // cannot connect now (starting up)
    [InlineData("53300")] // too many connections
    public void Postgres_states_that_pass_are_transient(string sqlState) =>
        Assert.True(FailureClassifier.IsTransient(new PostgresException("x", "ERROR", "ERROR", sqlState)));

    [Theory]
    [InlineData("23503")] // foreign key violation
    [InlineData("23514")] // check violation
    [InlineData("22001")] // string too long
    [InlineData("22003")] // numeric out of range
    [InlineData("42P01")] // undefined table
    public void Postgres_states_that_repeat_are_permanent(string sqlState) =>
        Assert.False(FailureClassifier.IsTransient(new PostgresException("x", "ERROR", "ERROR", sqlState)));

    [Fact]
    public void Lost_connections_and_timeouts_are_transient()
    {
        Assert.True(FailureClassifier.IsTransient(new NpgsqlException("x", new SocketException((int)SocketError.ConnectionRefused))));
        Assert.True(FailureClassifier.IsTransient(new TimeoutException()));
        Assert.True(FailureClassifier.IsTransient(new InvalidOperationException("wrapped", new IOException("reset"))));
    }

    [Fact]
    public void Anything_else_is_permanent()
    {
        Assert.False(FailureClassifier.IsTransient(new InvalidOperationException("bug")));
        Assert.False(FailureClassifier.IsTransient(new FormatException()));
    }
}
