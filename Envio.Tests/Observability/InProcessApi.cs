using System.Globalization;
using Envio.ApiService.Messaging;
using Envio.Messaging;
using Envio.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Envio.Tests.Observability;

/// <summary>
/// The real API (its Program: middleware, authentication, endpoints, publisher) hosted in the test process by
/// WebApplicationFactory, where its spans can be captured. It is given what the AppHost gives the stack's api (broker
/// connection and trust, encryption keys, token trust), and publishes to a private topology.
/// The type argument only names the API's assembly, whose entry point is run: <c>Program</c> would be ambiguous here
/// (the AppHost's is visible to the tests as well).
/// </summary>
public sealed class InProcessApi(IReadOnlyList<KeyValuePair<string, string?>> settings) : WebApplicationFactory<MessagePublisher>
{
    /// <summary>The settings sections the api resource is given that say how the API serves, publishes and trusts.</summary>
    private static readonly string[] ServiceSections = ["ConnectionStrings:", "Envio:", "Authentication:"];

    /// <summary>
    /// The API as the stack's api is given, on <paramref name="topology"/>; <paramref name="overrides"/> come last and
    /// win (a limit of a test's own, another broker address, a topology argument such as <c>Envio:Topology:MaxLength</c>).
    /// </summary>
    public static async Task<InProcessApi> ForAsync(
        EnvioStack stack, TopologyOptions topology, CancellationToken cancellationToken, IEnumerable<KeyValuePair<string, string?>>? overrides = null)
    {
        var given = (await ResourceSettings.OfAsync(stack.App, "api", cancellationToken))
            .Where(s => ServiceSections.Any(section => s.Key.StartsWith(section, StringComparison.Ordinal))
                && !s.Key.StartsWith(TopologyOptions.SectionName + ":", StringComparison.Ordinal));
        // Publishing to a private topology's names (envio.orders.test.…), which the API's own broker user may not:
        // the in-process API publishes as the administrator.
        var administrator = given.Where(s => s.Key == "ConnectionStrings:messaging-admin").Select(s => KeyValuePair.Create("ConnectionStrings:messaging", s.Value));
        return new InProcessApi([.. given, .. administrator, .. Settings(topology), .. overrides ?? []]);
    }

    /// <summary>A client of the API as the tests' default client (both scopes).</summary>
    public HttpClient Client()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = TestTokens.Bearer();
        return client;
    }

    // Host settings, not app configuration: Program reads the broker connection and the keys before it builds the app.
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }
    }

    /// <summary>The private topology's names; everything else keeps its defaults, as the in-process consumer's does.</summary>
    private static IEnumerable<KeyValuePair<string, string?>> Settings(TopologyOptions topology)
    {
        const string section = TopologyOptions.SectionName;
        yield return KeyValuePair.Create<string, string?>($"{section}:{nameof(topology.Exchange)}", topology.Exchange);
        yield return KeyValuePair.Create<string, string?>($"{section}:{nameof(topology.Queue)}", topology.Queue);
        yield return KeyValuePair.Create<string, string?>($"{section}:{nameof(topology.RoutingKey)}", topology.RoutingKey);
        yield return KeyValuePair.Create<string, string?>($"{section}:{nameof(topology.ErrorExchange)}", topology.ErrorExchange);
        yield return KeyValuePair.Create<string, string?>($"{section}:{nameof(topology.ErrorQueue)}", topology.ErrorQueue);
        yield return KeyValuePair.Create<string, string?>($"{section}:{nameof(topology.RetryExchange)}", topology.RetryExchange);
        yield return KeyValuePair.Create<string, string?>($"{section}:{nameof(topology.ControlExchange)}", topology.ControlExchange);
        foreach (var (delay, i) in (topology.RetryDelays ?? []).Select((d, i) => (d, i)))
        {
            yield return KeyValuePair.Create<string, string?>($"{section}:{nameof(topology.RetryDelays)}:{i}", delay.ToString("c", CultureInfo.InvariantCulture));
        }
    }
}
