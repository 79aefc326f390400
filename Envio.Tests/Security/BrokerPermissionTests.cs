using Envio.AppHost.Hosting;
using Envio.Tests.Support;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.Tests.Security;

/// <summary>
/// Least privilege on the broker: every user works in Envio's virtual host only; the administrator reaches Envio's
/// exchanges and queues and nothing else; each service's user does only what the service needs. Each forbidden
/// operation is tried with the service's own credentials, as an attacker holding them would.
/// </summary>
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

    [Fact]
    public async Task The_APIs_user_may_publish_to_the_work_exchanges_and_do_nothing_else()
    {
        var ct = TestContext.Current.CancellationToken;
        var factory = await stack.App.BrokerFactoryAsync(BrokerRole.Api, ct);
        await using var connection = await factory.CreateConnectionAsync(ct);

        // Allowed: a publish to the work exchange (with a key no queue is bound to, so that nothing reaches the consumer).
        await using (var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true), ct))
        {
            var returned = await Assert.ThrowsAnyAsync<PublishException>(async () =>
                await channel.BasicPublishAsync("envio.orders", "no-such-key", mandatory: true, new BasicProperties(), "x"u8.ToArray(), ct));
            Assert.True(returned.IsReturn);
        }

        // Take or remove what clients were already answered 202 for; copy every message to a tap; forge a command
        // or an error; delete the error queue.
        await AssertRefusedAsync(connection, c => c.BasicGetAsync("envio.orders", autoAck: false, ct));
        await AssertRefusedAsync(connection, c => c.QueuePurgeAsync("envio.orders", ct));
        await AssertRefusedAsync(connection, c => c.QueueDeclareAsync("envio.orders.tap", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct));
        await AssertRefusedAsync(connection, c => c.QueueDeleteAsync("envio.orders.error", cancellationToken: ct));
        await AssertRefusedAsync(connection, c => c.ExchangeDeclareAsync("envio.orders", ExchangeType.Direct, durable: true, cancellationToken: ct));
        await AssertPublishRefusedAsync(connection, "envio.orders.control");
        await AssertPublishRefusedAsync(connection, "envio.orders.control.state");
        await AssertPublishRefusedAsync(connection, "envio.orders.error");
        await AssertPublishRefusedAsync(connection, "envio.orders.retry");
    }

    [Fact]
    public async Task The_consumers_user_may_not_touch_the_error_queue_publish_objects_or_send_commands()
    {
        var ct = TestContext.Current.CancellationToken;
        var factory = await stack.App.BrokerFactoryAsync(BrokerRole.Consumer, ct);
        await using var connection = await factory.CreateConnectionAsync(ct);

        // Allowed: a look at the work queue (what its queue-depth check does) and a queue of the control names.
        await using (var channel = await connection.CreateChannelAsync(cancellationToken: ct))
        {
            await channel.QueueDeclarePassiveAsync("envio.orders", ct);
            var own = $"envio.orders.control.consumer.{Guid.NewGuid():N}";
            await channel.QueueDeclareAsync(own, durable: false, exclusive: true, autoDelete: true, cancellationToken: ct);
            await channel.QueueBindAsync(own, "envio.orders.control", "", cancellationToken: ct);
        }

        await AssertRefusedAsync(connection, c => c.BasicGetAsync("envio.orders.error", autoAck: false, ct));
        await AssertRefusedAsync(connection, c => c.QueuePurgeAsync("envio.orders.error", ct));
        await AssertRefusedAsync(connection, c => c.QueueDeleteAsync("envio.orders.error", cancellationToken: ct));
        await AssertRefusedAsync(connection, c => c.QueueDeleteAsync("envio.orders", cancellationToken: ct));
        await AssertRefusedAsync(connection, c => c.QueueDeclareAsync("envio.orders.tap", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct));
        await AssertRefusedAsync(connection, c => c.QueueBindAsync("envio.orders.retry.1000ms", "envio.orders", "order", cancellationToken: ct));
        await AssertPublishRefusedAsync(connection, "envio.orders");
        await AssertPublishRefusedAsync(connection, "envio.orders.control");
        await AssertPublishRefusedAsync(connection, "envio.orders.control.state");
        await AssertRefusedAsync(connection, c => c.QueueDeleteAsync("envio.orders.control.state", cancellationToken: ct));
        await AssertRefusedAsync(connection, c => c.QueueDeclareAsync("envio.orders.control.tap", durable: false, exclusive: true, autoDelete: true, cancellationToken: ct));
    }

    private static async Task AssertRefusedAsync(IConnection connection, Func<IChannel, Task> operation)
    {
        await using var channel = await connection.CreateChannelAsync(cancellationToken: TestContext.Current.CancellationToken);

        var refused = await Assert.ThrowsAsync<OperationInterruptedException>(() => operation(channel));
        Assert.Equal(AccessRefused, refused.ShutdownReason?.ReplyCode);
    }

    /// <summary>A publish the broker refuses closes the channel: the confirm never comes, the close says why.</summary>
    private static async Task AssertPublishRefusedAsync(IConnection connection, string exchange)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true), ct);

        await Assert.ThrowsAnyAsync<Exception>(async () =>
            await channel.BasicPublishAsync(exchange, "order", mandatory: true, new BasicProperties(), "forged"u8.ToArray(), ct));
        Assert.Equal(AccessRefused, channel.CloseReason?.ReplyCode);
    }

    private async Task AssertRefusedAsync(Func<IChannel, Task> declare)
    {
        await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: TestContext.Current.CancellationToken);

        var refused = await Assert.ThrowsAsync<OperationInterruptedException>(() => declare(channel));
        Assert.Equal(AccessRefused, refused.ShutdownReason?.ReplyCode);
    }
}
