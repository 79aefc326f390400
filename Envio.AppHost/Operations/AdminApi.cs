using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.AppHost.Operations;

/// <summary>The dashboard's commands call the API's admin endpoints as an operator would, with an admin token the AppHost mints.</summary>
internal static class AdminApi
{
    /// <summary>One admin call with a fresh admin token; anything but success (or an expected status) fails the command.</summary>
    public static async Task<HttpResponseMessage> CallAsync(
        EndpointReference endpoint, ExecuteCommandContext context, Func<HttpClient, Task<HttpResponseMessage>> call, HttpStatusCode? alsoExpected = null)
    {
        using var client = AdminClient(endpoint, context.Services);
        var response = await call(client);
        if (!response.IsSuccessStatusCode && response.StatusCode != alsoExpected)
        {
            var problem = await response.Content.ReadAsStringAsync(context.CancellationToken);
            response.Dispose();
            throw new InvalidOperationException($"The API answered {(int)response.StatusCode}: {problem}");
        }
        return response;
    }

    private static HttpClient AdminClient(EndpointReference endpoint, IServiceProvider services) => new()
    {
        BaseAddress = new Uri(endpoint.Url),
        DefaultRequestHeaders =
        {
            Authorization = new AuthenticationHeaderValue("Bearer",
                services.GetRequiredService<DevelopmentTokens>().Create("aspire-dashboard", ["envio.admin"], TimeSpan.FromMinutes(5))),
        },
    };
}
