using System.Data.Common;
using Aspire.Hosting;
using Envio.AppHost.Operations;
using Envio.Contracts.Security;
using Envio.Tests.Security;
using Envio.Tests.Support;
using RabbitMQ.Client;

namespace Envio.Tests.Operations;

/// <summary>
/// The stack as a newcomer runs it: Development, the API trusting only what its own configuration and user secrets
/// say (no test key), and a user-secrets store of its own that is empty when the stack starts, so nothing here
/// reads or writes the developer's.
/// </summary>
public sealed class DevelopmentStack : IAsyncLifetime
{
    private readonly string _dataRoot = EnvioAppHost.NewDataRoot();
    private DistributedApplication? _app;

    /// <summary>What <c>APPDATA</c> is for this stack's API and for the tools the tests run against it.</summary>
    public string UserSecretsRoot { get; } = Path.Combine(Path.GetTempPath(), "envio-tests", "user-secrets-" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Whether the store held any file before the stack started (it must not: that is the newcomer's case).</summary>
    public bool StoreWasEmptyAtStart { get; private set; }

    public DistributedApplication App => _app ?? throw new InvalidOperationException("The stack is not started.");

    public IConnection Broker { get; private set; } = null!;

    public DbDataSource Orders { get; private set; } = null!;

    public KeyRing Keys { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        StoreWasEmptyAtStart = !Directory.Exists(UserSecretsRoot) || !Directory.EnumerateFileSystemEntries(UserSecretsRoot).Any();
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Envio_AppHost>(
            ["--Envio:Hosting=processes", $"--Envio:Processes:DataRoot={_dataRoot}",
             $"--{DevelopmentTokens.UserSecretsRootKey}={UserSecretsRoot}", "--environment=Development"], ct);
        _app = await builder.BuildAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(EnvioAppHost.StartTimeout);
        await _app.StartAsync(timeout.Token);
        foreach (var resource in new[] { "messaging", "enviodb", "api", "consumer" })
        {
            await _app.ResourceNotifications.WaitForResourceHealthyAsync(resource, timeout.Token);
        }
        Broker = await _app.ConnectToBrokerAsync(ct);
        Orders = StoredOrders.Connect((await _app.OwnerConnectionStringAsync(ct)));
        Keys = await EncryptionKeysOf.AppAsync(_app);
    }

    /// <summary>A client of the stack's API sending this bearer token.</summary>
    public HttpClient Api(string token)
    {
        var client = App.CreateHttpClient("api");
        client.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        if (Broker is not null)
        {
            await Broker.DisposeAsync();
        }
        if (Orders is not null)
        {
            await Orders.DisposeAsync();
        }
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
        foreach (var directory in new[] { _dataRoot, UserSecretsRoot }.Where(Directory.Exists))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
