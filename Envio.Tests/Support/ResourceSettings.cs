using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Envio.Tests.Support;

/// <summary>What the AppHost hands one of its services: the resource's environment, resolved, as configuration keys.</summary>
public static class ResourceSettings
{
    /// <summary>
    /// The settings of <paramref name="resource"/> in configuration form (<c>Envio:Encryption:CurrentKeyId</c> for
    /// <c>Envio__Encryption__CurrentKeyId</c>), parameters and connection strings resolved the way the AppHost resolves
    /// them when it starts the service.
    /// </summary>
    public static async Task<IReadOnlyList<KeyValuePair<string, string?>>> OfAsync(DistributedApplication app, string resource, CancellationToken cancellationToken)
    {
        var service = app.Services.GetRequiredService<DistributedApplicationModel>().Resources.OfType<IResourceWithEnvironment>().Single(r => r.Name == resource);
        var configuration = await ExecutionConfigurationBuilder.Create(service).WithEnvironmentVariablesConfig()
            .BuildAsync(app.Services.GetRequiredService<DistributedApplicationExecutionContext>(), NullLogger.Instance, cancellationToken);
        return [.. configuration.EnvironmentVariables
            .Select(e => KeyValuePair.Create(e.Key.Replace("__", ":", StringComparison.Ordinal), (string?)e.Value))];
    }
}
