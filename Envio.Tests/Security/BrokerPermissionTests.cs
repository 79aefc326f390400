using Envio.AppHost.Hosting;
using Envio.Tests.Support;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.Tests.Security;

/// <summary>Least privilege on the broker: Envio's user reaches Envio's exchanges and queues in Envio's virtual host, and nothing else.</summary>
[Collection(AppHostTests.Name)]
public sealed class BrokerPermissionTests(EnvioStack stack)
{
    private const ushort AccessRefused = 403;

    [Fact]
    public async Task The_services_work_in_a_virtual_host_of_their_own()
    {
        var factory = await stack.App.BrokerFactoryAsync(TestContext.Current.CancellationToken);

        Assert.Equal(BrokerPermissions.VirtualHost, factory.VirtualHost);
        Assert.NotEqual("/", factory.VirtualHost);
    }

    [Fact]
    public async Task The_service_user_cannot_enter_the_default_virtual_host()
    {
        var ct = TestContext.Current.CancellationToken;
        var factory = await stack.App.BrokerFactoryAsync(ct);
        factory.VirtualHost = "/";
        factory.AutomaticRecoveryEnabled = false;

        // The broker refuses the open (530 NOT_ALLOWED); the client may report it at the open or at the first channel.
        var refused = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var connection = await factory.CreateConnectionAsync(ct);
            await using var channel = await connection.CreateChannelAsync(cancellationToken: ct);
        });
        Assert.Contains("NOT_ALLOWED", refused.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Guest_cannot_log_in()
    {
        var ct = TestContext.Current.CancellationToken;
        foreach (var virtualHost in new[] { "/", BrokerPermissions.VirtualHost })
        {
            var factory = await stack.App.BrokerFactoryAsync(ct);
            (factory.UserName, factory.Password, factory.VirtualHost, factory.AutomaticRecoveryEnabled) = ("guest", "guest", virtualHost, false);

            var refused = await Assert.ThrowsAsync<BrokerUnreachableException>(() => factory.CreateConnectionAsync(ct));
            Assert.IsType<AuthenticationFailureException>(refused.InnerException, exactMatch: false);
        }
    }

    [Fact]
    public async Task The_service_user_cannot_declare_an_exchange_or_a_queue_outside_Envios_names()
    {
        var ct = TestContext.Current.CancellationToken;
        await AssertRefusedAsync(channel => channel.ExchangeDeclareAsync("other.exchange", ExchangeType.Direct, durable: false, autoDelete: true, cancellationToken: ct));
        await AssertRefusedAsync(channel => channel.QueueDeclareAsync("other.queue", durable: false, exclusive: false, autoDelete: true, cancellationToken: ct));
        // A server-named queue (amq.gen-…) is outside them too: nothing in Envio needs one.
        await AssertRefusedAsync(channel => channel.QueueDeclareAsync(cancellationToken: ct));
    }

    [Fact]
    public async Task The_service_user_cannot_publish_to_an_exchange_outside_Envios_names()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);

        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await channel.BasicPublishAsync("amq.topic", "anything", "hello"u8.ToArray(), ct);
            await channel.BasicQosAsync(0, 1, false, ct); // a round trip, so that the broker's refusal has arrived
        });
        Assert.Equal(AccessRefused, channel.CloseReason?.ReplyCode);
    }

    [Fact]
    public async Task The_service_user_can_declare_Envios_own_names()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
        var name = $"envio.orders.test.{Guid.NewGuid():N}";

        await channel.ExchangeDeclareAsync(name, ExchangeType.Direct, durable: false, autoDelete: true, cancellationToken: ct);
        await channel.QueueDeclareAsync(name, durable: false, exclusive: false, autoDelete: true, cancellationToken: ct);
        await channel.QueueDeleteAsync(name, cancellationToken: ct);
        await channel.ExchangeDeleteAsync(name, cancellationToken: ct);
    }

    private async Task AssertRefusedAsync(Func<IChannel, Task> declare)
    {
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: TestContext.Current.CancellationToken);

        var refused = await Assert.ThrowsAsync<OperationInterruptedException>(() => declare(channel));
        Assert.Equal(AccessRefused, refused.ShutdownReason?.ReplyCode);
    }
}
