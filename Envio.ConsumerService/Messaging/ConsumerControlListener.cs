using System.Text;
using Envio.Contracts;
using Envio.Messaging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// Keeps <see cref="ConsumingSwitch"/> at the operators' state (<see cref="ConsumerControl"/>), on a connection of its
/// own (it publishes confirmations, and a connection that publishes is blocked whole during an alarm). It reads the
/// kept state at start, after every recovery of that connection and every <see cref="ConsumerOptions.ControlStateRefresh"/>,
/// and hears new states (and earlier APIs' commands) on a queue of its own bound to the control exchange. That queue
/// has a fresh name in every listening session and is not exclusive, so a fast recovery never meets the old one
/// locked (RESOURCE_LOCKED); a recovery, a closed channel or a cancelled consumer starts a new session. Each state
/// applied is confirmed to its sender's reply queue. With <see cref="TopologyOptions.ControlUser"/> set, only that
/// broker user's commands count.
/// </summary>
public sealed partial class ConsumerControlListener(
    IConnectionFactory factory, ConsumingSwitch consumingSwitch, IOptions<TopologyOptions> topology, IOptions<ConsumerOptions> consumerOptions,
    ILogger<ConsumerControlListener> logger) : BackgroundService
{
    /// <summary>An unused listening queue left behind (its session never ended cleanly) disappears after this.</summary>
    private const int ListeningQueueExpiresMs = 60_000;

    private readonly TopologyOptions _topology = topology.Value;
    private readonly ConsumerOptions _options = consumerOptions.Value;
    private TaskCompletionSource _renew = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        IConnection? connection = null;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    connection ??= await ConnectAsync(stoppingToken);
                    await ListenAsync(connection, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    // Shutting down.
                }
                catch (Exception e)
                {
                    // Consuming does not start before the kept state was read once: this says why it waits.
                    LogListenFailed(logger, _options.ResubscribeDelay, e);
                    try
                    {
                        await Task.Delay(_options.ResubscribeDelay, stoppingToken);
                    }
                    catch (OperationCanceledException)
                    {
                        // Shutting down.
                    }
                }
            }
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync();
            }
        }
    }

    private async Task<IConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        var connection = await factory.CreateConnectionAsync($"{_options.EffectiveName} envio-consumer control", cancellationToken);
        connection.RecoverySucceededAsync += (_, _) =>
        {
            Volatile.Read(ref _renew).TrySetResult(); // the state may have changed meanwhile, and the session's queue is gone
            return Task.CompletedTask;
        };
        return connection;
    }

    /// <summary>One listening session: a fresh queue bound to the control exchange, then the kept state, read again periodically.</summary>
    private async Task ListenAsync(IConnection connection, CancellationToken stoppingToken)
    {
        var renew = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _renew, renew);
        await ConsumerControl.DeclareAsync(ct => connection.CreateChannelAsync(null, ct), _topology, BrokerVersion.Of(connection), stoppingToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: stoppingToken);
        channel.ChannelShutdownAsync += (_, args) =>
        {
            if (connection.IsOpen && args.Initiator != ShutdownInitiator.Application)
            {
                renew.TrySetResult(); // closed by the broker alone: no recovery comes
            }
            return Task.CompletedTask;
        };

        // Listen first, then read: a state published in between is heard, one published before is read.
        var queue = ConsumerControl.PrivateQueue(_topology, "consumer");
        await channel.QueueDeclareAsync(queue, durable: false, exclusive: false, autoDelete: true,
            arguments: new Dictionary<string, object?> { ["x-expires"] = ListeningQueueExpiresMs }, cancellationToken: stoppingToken);
        await channel.QueueBindAsync(queue, _topology.ControlExchange, routingKey: "", cancellationToken: stoppingToken);
        var listener = new ControlConsumer(channel, () => renew.TrySetResult());
        listener.ReceivedAsync += (_, message) => HeardAsync(channel, message);
        await channel.BasicConsumeAsync(queue, autoAck: true, listener, stoppingToken);

        while (true)
        {
            await ReadKeptAsync(channel, stoppingToken);
            using var refresh = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            refresh.CancelAfter(_options.ControlStateRefresh);
            try
            {
                await renew.Task.WaitAsync(refresh.Token);
                return; // a new session, on a fresh queue
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                // Time to read the kept state again.
            }
        }
    }

    private async Task ReadKeptAsync(IChannel channel, CancellationToken cancellationToken)
    {
        if (await ConsumingState.ReadKeptAsync(channel, _topology, cancellationToken) is not { } kept)
        {
            consumingSwitch.NothingKept();
            return;
        }
        if (!FromControlUser(kept.UserId, kept.AppId))
        {
            consumingSwitch.NothingKept(); // nothing else is kept: the queue holds one message
            return;
        }
        if (consumingSwitch.Apply(kept.State, SenderOf(kept.UserId, kept.AppId), orEqual: false))
        {
            await ConfirmAsync(channel, kept.ReplyTo, cancellationToken);
        }
    }

    private async Task HeardAsync(IChannel channel, BasicDeliverEventArgs message)
    {
        var properties = message.BasicProperties;
        if (!FromControlUser(properties.UserId, properties.AppId))
        {
            return;
        }
        var by = SenderOf(properties.UserId, properties.AppId);
        if (ConsumingState.FromJson(message.Body) is { } state)
        {
            consumingSwitch.Apply(state, by, orEqual: true);
            await ConfirmAsync(channel, properties.ReplyTo, message.CancellationToken);
            return;
        }

        // An earlier API's command: the command in the type, the type of data object in a header.
        var named = properties.Headers?.TryGetValue(ConsumerControl.DataObjectHeader, out var value) == true
            ? value switch { byte[] bytes => Encoding.UTF8.GetString(bytes), string text => text, _ => "" }
            : null;
        var type = DataObjectTypes.Registered.ByName(named);
        if (named is not null && type is null)
        {
            LogUnknownType(logger, named, by);
            return;
        }
        switch (properties.Type)
        {
            case ConsumerControl.Pause:
                consumingSwitch.Pause(type, by);
                break;
            case ConsumerControl.Resume:
                consumingSwitch.Resume(type, by);
                break;
        }
    }

    /// <summary>Tells the sender which state this consumer applies now (it may be newer than the one confirmed).</summary>
    private async Task ConfirmAsync(IChannel channel, string? replyTo, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(replyTo))
        {
            return;
        }
        var confirmation = new ConsumingConfirmation(_options.EffectiveName, consumingSwitch.AppliedSequence, consumingSwitch.PausedTypes);
        try
        {
            // Unroutable (the sender stopped waiting, its queue gone) is dropped: no mandatory flag.
            await channel.BasicPublishAsync(ConsumerControl.RepliesExchange(_topology), replyTo, mandatory: false,
                new BasicProperties { ContentType = "application/json" }, confirmation.ToJson(), cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogConfirmFailed(logger, e.Message);
        }
    }

    /// <summary>Whether the broker-validated sender may command (see <see cref="TopologyOptions.ControlUser"/>).</summary>
    private bool FromControlUser(string? userId, string? appId)
    {
        if (_topology.ControlUser is not { Length: > 0 } controlUser || string.Equals(userId, controlUser, StringComparison.Ordinal))
        {
            return true;
        }
        LogNotControlUser(logger, userId ?? "(none)", appId ?? "(none)", controlUser);
        return false;
    }

    /// <summary>The operator: the broker user that published (validated by the broker), and the name the API gave as display.</summary>
    private static string SenderOf(string? userId, string? appId) => $"{userId ?? "an unvalidated sender"} ({appId ?? "unnamed"})";

    /// <summary>Tells a basic.cancel the broker sent (the listening queue deleted) from the client's other unregistrations.</summary>
    private sealed class ControlConsumer(IChannel channel, Action cancelledByBroker) : AsyncEventingBasicConsumer(channel)
    {
        public override async Task HandleBasicCancelAsync(string consumerTag, CancellationToken cancellationToken = default)
        {
            await base.HandleBasicCancelAsync(consumerTag, cancellationToken);
            cancelledByBroker();
        }
    }

    [LoggerMessage(LogLevel.Warning, "Listening for operators' commands failed; trying again in {Delay}.")]
    private static partial void LogListenFailed(ILogger logger, TimeSpan delay, Exception exception);

    [LoggerMessage(LogLevel.Warning, "A command from {OperatorName} names '{Type}', which is no registered type of data object: ignored.")]
    private static partial void LogUnknownType(ILogger logger, string type, string operatorName);

    [LoggerMessage(LogLevel.Warning, "Ignored a command of broker user {UserId} (calling itself {AppId}): only {ControlUser}'s count (Envio:Topology:ControlUser).")]
    private static partial void LogNotControlUser(ILogger logger, string userId, string appId, string controlUser);

    [LoggerMessage(LogLevel.Information, "Could not confirm the state applied to its sender: {Reason}.")]
    private static partial void LogConfirmFailed(ILogger logger, string reason);
}
