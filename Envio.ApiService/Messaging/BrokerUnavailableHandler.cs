using System.Globalization;
using Envio.Contracts.DataObjects;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Messaging;

/// <summary>
/// The broker connection is made when the publisher is first needed; an API that starts (or restarts) while the broker
/// is away fails there. That is still "the broker is unreachable": a 503 with Retry-After, never a 500. The next request
/// tries to connect again. The data-object endpoints catch it themselves, to name the ids they assigned (invariant 18);
/// this answers for the others (the admin API), before any endpoint code runs.
/// </summary>
public sealed class BrokerUnavailableHandler(IProblemDetailsService problems, IOptions<PublisherOptions> options) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (!BrokerFailures.IsUnreachableWithin(exception))
        {
            return false;
        }
        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(options.Value.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        return await problems.TryWriteAsync(new()
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "The broker is unavailable.",
                // A type's endpoints name its ids; anything else (the admin API) says what it always said.
                Detail = $"The broker is unreachable. Retry later with the same {httpContext.GetEndpoint()?.Metadata.GetMetadata<DataObjectType>()?.IdsName ?? "orderIds"}: nothing was accepted.",
            },
        });
    }
}
