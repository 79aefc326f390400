using Envio.ApiService.Endpoints;
using Envio.ApiService.Messaging;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Envio.Tests.Messaging;

/// <summary>
/// The handler takes only broker failures; what a client sees when the broker cannot be reached is tested on the
/// real API against a closed port (EndToEnd/BrokerUnreachableTests).
/// </summary>
public sealed class BrokerUnavailableHandlerTests
{
    [Fact]
    public async Task Other_failures_are_left_to_the_default_handler()
    {
        var (context, handler) = Create();
        Assert.False(await handler.TryHandleAsync(context, new InvalidOperationException("a bug"), TestContext.Current.CancellationToken));
        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
    }

    /// <summary>
    /// An admin call that loses the broker mid-call answers 503 without the broker's own words (its addresses, users,
    /// vhosts, reply texts): those go to the API's log.
    /// </summary>
    [Fact]
    public async Task An_admin_call_that_loses_the_broker_answers_503_without_the_brokers_words()
    {
        var (context, _) = Create();
        var lost = new AlreadyClosedException(new ShutdownEventArgs(ShutdownInitiator.Peer, 320,
            "CONNECTION_FORCED - closed via management plugin, user envio-admin, vhost envio, node rabbit@10.1.2.3"));

        var result = await ErrorQueueEndpoints.BrokerCallAsync(context, () => throw lost);
        await result.ExecuteAsync(context);

        Assert.Equal(StatusCodes.Status503ServiceUnavailable, context.Response.StatusCode);
        context.Response.Body.Position = 0;
        var body = await new StreamReader(context.Response.Body).ReadToEndAsync(TestContext.Current.CancellationToken);
        Assert.Contains("The broker is unreachable; nothing was changed.", body, StringComparison.Ordinal);
        Assert.DoesNotContain("CONNECTION_FORCED", body, StringComparison.Ordinal);
        Assert.DoesNotContain("10.1.2.3", body, StringComparison.Ordinal);
    }

    private static (DefaultHttpContext, BrokerUnavailableHandler) Create()
    {
        var services = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();
        var context = new DefaultHttpContext { RequestServices = services };
        context.Response.Body = new MemoryStream();
        var handler = new BrokerUnavailableHandler(services.GetRequiredService<IProblemDetailsService>(),
            Options.Create(new PublisherOptions { RetryAfter = TimeSpan.FromSeconds(5) }));
        return (context, handler);
    }
}
