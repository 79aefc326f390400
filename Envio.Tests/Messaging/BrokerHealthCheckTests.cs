using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Envio.Tests.Messaging;

/// <summary>
/// The services' broker health check is no hand-written one: Aspire.RabbitMQ.Client (under
/// <see cref="RabbitMQTlsExtensions.AddRabbitMQClientOverTls"/>) registers the health-check package's
/// (AspNetCore.HealthChecks.Rabbitmq 9.0.0, built against RabbitMQ.Client 7) on the client's own connection, and it runs
/// against the RabbitMQ.Client this solution uses; ServiceDefaults caches its result like every other check's.
/// </summary>
public sealed class BrokerHealthCheckTests
{
    [Fact]
    public void The_broker_check_is_the_health_check_packages_and_the_administrators_connection_has_none()
    {
        using var host = Service(new FakeBroker()).Build();

        var check = BrokerRegistration(host).Factory(host.Services);

        Assert.Equal("HealthChecks.RabbitMQ.RabbitMQHealthCheck", check.GetType().FullName);
        Assert.Equal("HealthChecks.Rabbitmq", check.GetType().Assembly.GetName().Name);
        Assert.Single(Registrations(host), registration => registration.Name.StartsWith("RabbitMQ.Client", StringComparison.Ordinal));
    }

    [Fact]
    public async Task It_opens_a_channel_on_the_clients_connection_with_the_solutions_RabbitMQ_Client()
    {
        var broker = new FakeBroker();
        using var host = Service(broker).Build();
        var registration = BrokerRegistration(host);

        var result = await registration.Factory(host.Services).CheckHealthAsync(new HealthCheckContext { Registration = registration }, TestContext.Current.CancellationToken);

        Assert.Equal(HealthStatus.Healthy, result.Status);
        Assert.Equal(1, broker.ChannelsOpened);
        Assert.Equal(7, typeof(IConnection).Assembly.GetName().Version!.Major); // the package's target, not 6.x
    }

    [Fact]
    public async Task A_broker_that_opens_no_channel_makes_it_unhealthy()
    {
        var broker = new FakeBroker { Refuses = true };
        using var host = Service(broker).Build();
        var registration = BrokerRegistration(host);

        var result = await registration.Factory(host.Services).CheckHealthAsync(new HealthCheckContext { Registration = registration }, TestContext.Current.CancellationToken);

        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.IsType<FakeBroker.Refused>(result.Exception);
    }

    [Fact]
    public async Task With_the_service_defaults_its_result_is_reused_for_a_while()
    {
        var broker = new FakeBroker();
        var builder = Service(broker);
        builder.AddDefaultHealthChecks();
        using var host = builder.Build();
        var registration = BrokerRegistration(host);

        for (var call = 0; call < 3; call++)
        {
            var result = await registration.Factory(host.Services).CheckHealthAsync(new HealthCheckContext { Registration = registration }, TestContext.Current.CancellationToken);
            Assert.Equal(HealthStatus.Healthy, result.Status);
        }

        Assert.Equal(1, broker.ChannelsOpened);
    }

    /// <summary>A service's broker wiring, in Development (amqp:// accepted), with a connection that needs no broker.</summary>
    private static HostApplicationBuilder Service(FakeBroker broker)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Development });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:messaging"] = "amqp://envio:secret@localhost:5672/envio",
            ["ConnectionStrings:messaging-admin"] = "amqp://admin:secret@localhost:5672/envio",
        });
        builder.AddRabbitMQClientOverTls("messaging");
        builder.AddRabbitMQAdminClientOverTls("messaging");
        builder.Services.AddSingleton(broker.Connection); // registered last: it replaces the client's, which would connect
        return builder;
    }

    private static HealthCheckRegistration BrokerRegistration(IHost host) =>
        Assert.Single(Registrations(host), registration => registration.Name == "RabbitMQ.Client");

    private static IList<HealthCheckRegistration> Registrations(IHost host) =>
        host.Services.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations.ToList();

    /// <summary>An <see cref="IConnection"/> whose channels open (or not) without a broker, counting them.</summary>
    private sealed class FakeBroker
    {
        public FakeBroker() => Connection = Proxy<IConnection>(Answer);

        public IConnection Connection { get; }

        public bool Refuses { get; init; }

        public int ChannelsOpened { get; private set; }

        private object? Answer(MethodInfo method)
        {
            if (method.Name == nameof(IConnection.CreateChannelAsync))
            {
                if (Refuses)
                {
                    return Task.FromException<IChannel>(new Refused());
                }
                ChannelsOpened++;
                return Task.FromResult(Proxy<IChannel>(_ => null));
            }
            return null;
        }

        /// <summary>A proxy answering <paramref name="answer"/>, else completed tasks, true and default values.</summary>
        private static T Proxy<T>(Func<MethodInfo, object?> answer) where T : class
        {
            var proxy = DispatchProxy.Create<T, Answering>();
            ((Answering)(object)proxy).Answer = answer;
            return proxy;
        }

        public sealed class Refused() : Exception("The broker refused the channel.");
    }

    public class Answering : DispatchProxy
    {
        public Func<MethodInfo, object?> Answer { get; set; } = _ => null;

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            var method = targetMethod!;
            if (Answer(method) is { } answer)
            {
                return answer;
            }
            var type = method.ReturnType;
            return type == typeof(Task) ? Task.CompletedTask
                : type == typeof(ValueTask) ? ValueTask.CompletedTask
                : type == typeof(bool) ? true
                : type.IsValueType && type != typeof(void) ? Activator.CreateInstance(type)
                : null;
        }
    }
}
