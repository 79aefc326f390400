using System.Text.Json;
using Envio.ApiService.Messaging;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using RabbitMQ.Client.Exceptions;

namespace Envio.Tests.Messaging;

/// <summary>An API that cannot even connect to the broker answers 503 with Retry-After, as for any other broker outage.</summary>
public sealed class BrokerUnavailableHandlerTests
{
    [Fact]
    public async Task A_broker_that_cannot_be_reached_at_connect_time_is_a_503_with_retry_after_and_problem_details()
    {
        var (context, handler) = Create();
        var connectFailure = new InvalidOperationException("resolving OrderPublisher", new BrokerUnreachableException(new IOException("Connection refused")));

        Assert.True(await handler.TryHandleAsync(context, connectFailure, TestContext.Current.CancellationToken));

        Assert.Equal(StatusCodes.Status503ServiceUnavailable, context.Response.StatusCode);
        Assert.Equal("5", context.Response.Headers.RetryAfter.ToString());
        context.Response.Body.Position = 0;
        using var problem = await JsonDocument.ParseAsync(context.Response.Body, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(503, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Equal("The broker is unavailable.", problem.RootElement.GetProperty("title").GetString());
    }

    [Fact]
    public async Task Other_failures_are_left_to_the_default_handler()
    {
        var (context, handler) = Create();
        Assert.False(await handler.TryHandleAsync(context, new InvalidOperationException("a bug"), TestContext.Current.CancellationToken));
        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
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
