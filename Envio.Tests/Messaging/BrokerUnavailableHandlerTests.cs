using Envio.ApiService.Messaging;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

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
