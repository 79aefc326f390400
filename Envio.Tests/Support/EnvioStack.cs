using Envio.ApiService.Messaging;
using System.Data.Common;
using Aspire.Hosting;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Contracts.Security;
using Envio.Tests.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using RabbitMQ.Client;

namespace Envio.Tests.Support;

/// <summary>
/// One running stack shared by the end-to-end and store tests: the real AppHost with RabbitMQ and PostgreSQL as local
/// processes and two consumer replicas. Tests that break things start their own.
/// </summary>
public class EnvioStack : IAsyncLifetime
{
    private readonly string _dataRoot = EnvioAppHost.NewDataRoot();
    private DistributedApplication? _app;
    private IConnection? _broker;
    private ConnectionFactory? _brokerFactory;
    private AdminConnection? _admin;
    private NpgsqlDataSource? _database;
    private readonly List<BasicGetResult> _errorQueueTaken = [];

    /// <summary>
    /// What the AppHost is given about the database: nothing (it runs PostgreSQL) or an existing server's connection
    /// string. Null when this stack cannot run here.
    /// </summary>
    protected virtual string[]? DatabaseArguments() => [];

    /// <summary>Why this stack cannot run here (its tests skip with this reason), or null.</summary>
    public virtual string? Unavailable => null;

    /// <summary>Skips the calling test when this stack cannot run here.</summary>
    public void SkipWhenUnavailable() => Assert.SkipWhen(Unavailable is not null, Unavailable ?? "");

    /// <summary>A connection of the tests' own to the stack's broker.</summary>
    public IConnection Broker => _broker ?? throw new InvalidOperationException("The stack is not started.");

    /// <summary>How the tests (and in-process services) open further connections of their own to the stack's broker.</summary>
    public ConnectionFactory BrokerFactory => _brokerFactory ?? throw new InvalidOperationException("The stack is not started.");

    /// <summary>An API's administrator connection to the stack's broker (declaring topology, operators' calls), for in-process tests.</summary>
    public AdminConnection Admin => _admin ??= new AdminConnection(BrokerFactory);

    /// <summary>The consumer's mover of failed messages, on a connection of its own, for in-process tests.</summary>
    public FailurePublisher FailurePublisher(TopologyOptions topology, ConsumerOptions? options = null, ILogger<FailurePublisher>? logger = null) =>
        new(BrokerFactory, Options.Create(options ?? new ConsumerOptions()), logger ?? NullLogger<FailurePublisher>.Instance);

    public DistributedApplication App => _app ?? throw new InvalidOperationException("The stack is not started.");

    public HttpClient Api { get; private set; } = null!;

    /// <summary>The database the consumers store orders in, whichever engine it is.</summary>
    public DbDataSource Orders { get; private set; } = null!;

    /// <summary>The same database, when it is PostgreSQL (tests of PostgreSQL itself use the shared stack).</summary>
    public NpgsqlDataSource Database => _database ?? throw new InvalidOperationException("This stack's database is not PostgreSQL.");

    /// <summary>The PostgreSQL server (not the database): tests that need a database of their own create it here.</summary>
    public string ServerConnectionString { get; private set; } = null!;

    public TopologyOptions Topology { get; } = new();

    /// <summary>The key ring the stack's services encrypt messages with.</summary>
    public KeyRing Keys { get; private set; } = null!;

    /// <summary>The key ring the stack's consumer seals stored columns with (the API does not have it).</summary>
    public KeyRing ColumnKeys { get; private set; } = null!;

    /// <summary>Where this stack's broker and database keep their files (<c>run-*/messaging</c>, <c>run-*/postgres/data</c>).</summary>
    public string DataRoot => _dataRoot;

    /// <summary>
    /// The API logs its authentication failures and challenges (Information; Warning by default): the secrets test
    /// searches them for the tokens, and waits for them to know the API's lines have arrived.
    /// </summary>
    private static void LogAuthentication(IDistributedApplicationTestingBuilder builder) =>
        builder.CreateResourceBuilder(builder.Resources.OfType<Aspire.Hosting.ApplicationModel.ProjectResource>().Single(r => r.Name == "api"))
            .WithEnvironment("Logging__LogLevel__Microsoft.AspNetCore.Authentication", "Information");

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        if (DatabaseArguments() is not { } database)
        {
            return;
        }
        _app = await EnvioAppHost.StartAsync(_dataRoot, LogAuthentication, ct, ["--Envio:ConsumerReplicas=2", .. database]);
        Api = _app.CreateHttpClient("api");
        Api.DefaultRequestHeaders.Authorization = TestTokens.Bearer();
        var orders = (await _app.OwnerConnectionStringAsync(ct));
        Orders = StoredOrders.Connect(orders);
        if (Orders is NpgsqlDataSource postgres)
        {
            _database = postgres;
            ServerConnectionString = (await _app.GetConnectionStringAsync("postgres", ct))!;
        }
        Keys = await EncryptionKeysOf.AppAsync(_app);
        ColumnKeys = await EncryptionKeysOf.ColumnsAsync(_app);
        _brokerFactory = await _app.BrokerFactoryAsync(ct);
        _broker = await _brokerFactory.CreateConnectionAsync(ct);
    }

    /// <summary>
    /// Waits until the work queue and every retry queue hold nothing, ready or delivered and unacknowledged (see
    /// <see cref="BrokerQueues.WaitUntilSettledAsync"/>).
    /// </summary>
    public Task WaitUntilQueuesDrainedAsync(CancellationToken ct) => BrokerQueues.WaitUntilSettledAsync(App, Broker, Topology, ct);

    /// <summary>
    /// Waits until the orders' work queue has at least <paramref name="count"/> consumers (the broker's own count, a
    /// passive declare): every replica's sessions subscribed, as a test that asks them to share a load needs.
    /// </summary>
    public async Task WaitForConsumersAsync(int count, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        await using var channel = await Broker.CreateChannelAsync(cancellationToken: ct);
        uint consumers;
        while ((consumers = (await channel.QueueDeclarePassiveAsync(Topology.Queue, ct)).ConsumerCount) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{Topology.Queue} has {consumers} consumers, not {count}");
            await Task.Delay(200, ct);
        }
    }

    /// <summary>
    /// Messages ready in a queue no consumer of the stack reads (a test's private one): the broker's own count at this
    /// moment (a passive declare), where <c>rabbitmqctl</c>'s figures lag by its statistics interval.
    /// </summary>
    public Task<uint> ReadyInPrivateQueueAsync(string queue, CancellationToken ct) => BrokerQueues.ReadyAsync(Broker, queue, ct);

    /// <summary>
    /// Waits until <paramref name="expected"/> messages are ready in a test's private queue (half a minute's ceiling)
    /// and returns the last count. Messages handed back (a nack with requeue) are ready again once the queue applied
    /// the return: a quorum queue answers a passive declare from the state it applied, so a count taken the moment
    /// after a nack may still miss them.
    /// </summary>
    public async Task<uint> WaitForReadyInPrivateQueueAsync(string queue, uint expected, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        uint ready;
        while ((ready = await ReadyInPrivateQueueAsync(queue, ct)) != expected && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, ct);
        }
        return ready;
    }

    /// <summary>Publishes a raw message to the work exchange, as a foreign or broken producer would.</summary>
    public async Task PublishRawAsync(BasicProperties properties, byte[] body)
    {
        await using var channel = await _broker!.CreateChannelAsync(new CreateChannelOptions(true, true));
        await channel.BasicPublishAsync(Topology.Exchange, Topology.RoutingKey, mandatory: true, properties, body);
    }

    /// <summary>Publishes a message as the API would, its body encrypted with the stack's key ring.</summary>
    public Task PublishEncryptedAsync(Envelope envelope, byte[] json) =>
        PublishRawAsync(EncryptedBody.Properties(envelope), EncryptedBody.Seal(Keys, envelope, json));

    /// <summary>Acknowledges the error queue's messages with these ids, one copy of each (the others go back); returns how many it found.</summary>
    public async Task<int> TakeFromErrorQueueAsync(HashSet<string> ids, CancellationToken ct)
    {
        var found = new HashSet<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (found.Count < ids.Count && DateTime.UtcNow < deadline)
        {
            await using var channel = await Broker.CreateChannelAsync(cancellationToken: ct);
            while (await channel.BasicGetAsync(Topology.ErrorQueue, autoAck: false, ct) is { } message)
            {
                if (ids.Contains(message.BasicProperties.MessageId ?? "") && found.Add(message.BasicProperties.MessageId!))
                {
                    await channel.BasicAckAsync(message.DeliveryTag, multiple: false, ct);
                }
            }
            await Task.Delay(200, ct); // closing the channel hands the others back
        }
        return found.Count;
    }

    /// <summary>
    /// The first error-queue message that satisfies <paramref name="match"/>, among those taken earlier and those in
    /// the queue now. Messages are taken with auto-ack into a set the stack keeps: a quorum queue hands a requeued
    /// message back at the head, so nacking the ones that do not match could return the same one until the timeout.
    /// </summary>
    public async Task<BasicGetResult?> TakeFromErrorQueueAsync(Func<BasicGetResult, bool> match, TimeSpan timeout)
    {
        await using var channel = await _broker!.CreateChannelAsync();
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            lock (_errorQueueTaken)
            {
                if (_errorQueueTaken.FirstOrDefault(match) is { } found)
                {
                    _errorQueueTaken.Remove(found);
                    return found;
                }
            }
            if (DateTime.UtcNow >= deadline)
            {
                return null;
            }
            var message = await channel.BasicGetAsync(Topology.ErrorQueue, autoAck: true);
            if (message is null)
            {
                await Task.Delay(100);
                continue;
            }
            lock (_errorQueueTaken)
            {
                _errorQueueTaken.Add(message);
            }
        }
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_admin is not null)
        {
            await _admin.DisposeAsync();
        }
        if (_broker is not null)
        {
            await _broker.DisposeAsync();
        }
        if (Orders is not null)
        {
            await Orders.DisposeAsync();
        }
        Api?.Dispose();
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
        if (Directory.Exists(_dataRoot))
        {
            Directory.Delete(_dataRoot, recursive: true);
        }
        GC.SuppressFinalize(this);
    }
}
