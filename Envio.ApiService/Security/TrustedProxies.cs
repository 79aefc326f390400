using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Envio.ApiService.Security;

/// <summary>
/// Whose <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> the API believes: only the proxies configured in
/// <c>Envio:Api:ForwardedHeaders</c> (<c>KnownProxies</c>, <c>KnownNetworks</c>). Anyone can send the headers; believed
/// from anyone, they would set the address the audit records and the anonymous rate-limit bucket. ASP.NET Core's
/// <c>ASPNETCORE_FORWARDEDHEADERS_ENABLED=true</c> (which Aspire's manifest and compose set) believes every sender;
/// this runs after it and narrows that to the configured proxies, or to nobody.
/// </summary>
public static class TrustedProxies
{
    public static IHostApplicationBuilder AddTrustedProxies(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ForwardedHeadersOptions>()
            .PostConfigure<IOptions<ApiOptions>>((options, api) => Apply(options, api.Value.ForwardedHeaders));
        return builder;
    }

    /// <summary>Reads forwarded headers only when a trusted proxy is configured (else the middleware is not added).</summary>
    public static WebApplication UseTrustedProxies(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<ForwardedHeadersOptions>>().Value.ForwardedHeaders != ForwardedHeaders.None)
        {
            app.UseForwardedHeaders();
        }
        return app;
    }

    internal static void Apply(ForwardedHeadersOptions options, ApiOptions.ForwardedHeadersSettings settings)
    {
        // An empty list would mean "any sender" to the middleware: clear, refill, and with nothing configured read nothing.
        options.KnownProxies.Clear();
        options.KnownIPNetworks.Clear();
        // Blank entries are "not set" (compose passes an empty variable as an empty string).
        foreach (var proxy in settings.KnownProxies.Where(p => !string.IsNullOrWhiteSpace(p)))
        {
            options.KnownProxies.Add(IPAddress.TryParse(proxy, out var address) ? address
                : throw new InvalidOperationException($"{ApiOptions.SectionName}:ForwardedHeaders:KnownProxies: '{proxy}' is not an IP address."));
        }
        foreach (var network in settings.KnownNetworks.Where(n => !string.IsNullOrWhiteSpace(n)))
        {
            options.KnownIPNetworks.Add(System.Net.IPNetwork.TryParse(network, out var parsed) ? parsed
                : throw new InvalidOperationException($"{ApiOptions.SectionName}:ForwardedHeaders:KnownNetworks: '{network}' is not a network in CIDR notation (10.0.0.0/8)."));
        }
        options.ForwardedHeaders = options.KnownProxies.Count + options.KnownIPNetworks.Count == 0
            ? ForwardedHeaders.None
            : ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
        options.ForwardLimit = 1; // the one proxy in front: an address a client put further left is not believed
    }
}
