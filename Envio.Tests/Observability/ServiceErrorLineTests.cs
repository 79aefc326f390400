using Envio.Tests.Support;

namespace Envio.Tests.Observability;

/// <summary>
/// The lines <see cref="EnvioAppHost.ServiceErrors"/> counts, as Aspire forwards a service's console output: line
/// number, timestamp, colour codes around the level. (BrokerUnreachableTests checks it against a live API.)
/// </summary>
public sealed class ServiceErrorLineTests
{
    [Theory]
    [InlineData("49: 2026-11-29T20:26:21.9150000Z \u001b[41m\u001b[30mfail\u001b[39m\u001b[22m\u001b[49m: Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService[103]")]
    [InlineData("7: 2026-11-29T20:26:21.9150000Z \u001b[41m\u001b[1m\u001b[37mcrit\u001b[39m\u001b[22m\u001b[49m: Microsoft.Extensions.Hosting.Internal.Host[10]")]
    [InlineData("12: 2026-11-29T20:26:21.9150000Z fail: Envio.ConsumerService.Messaging.Consumer[3]")]
    [InlineData("fail: Envio.ApiService[1]")]
    public void A_fail_or_crit_entry_is_an_error_line(string line) => Assert.True(EnvioAppHost.IsErrorLine(line));

    [Theory]
    [InlineData("50: 2026-11-29T20:26:21.9150000Z       Health check RabbitMQ.Client with status Unhealthy completed")]
    [InlineData("3: 2026-11-29T20:26:21.9150000Z \u001b[40m\u001b[32minfo\u001b[39m\u001b[22m\u001b[49m: Microsoft.Hosting.Lifetime[14]")]
    [InlineData("4: 2026-11-29T20:26:21.9150000Z \u001b[40m\u001b[1m\u001b[33mwarn\u001b[39m\u001b[22m\u001b[49m: Envio.ConsumerService.Messaging.BatchWriter[2]")]
    [InlineData("5: 2026-11-29T20:26:21.9150000Z       The order failed: fail: is in the message, not the level")]
    public void Other_lines_are_not(string line) => Assert.False(EnvioAppHost.IsErrorLine(line));
}
