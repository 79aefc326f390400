using Microsoft.Extensions.Configuration;

namespace Envio.AppHost.Hosting;

internal static class ServiceSettings
{
    /// <summary>
    /// Runs the service in the AppHost's own environment (<c>Development</c>, <c>Staging</c>, <c>Production</c>). Its
    /// launch profile sets <c>Development</c> whatever the AppHost runs as, and a service in Development shows its API
    /// reference, trusts the development token issuer and accepts plain links: an AppHost run as Production on a shared
    /// server must not start services that do. In run mode only: a deployment's environment is ops' to set.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithEnvironmentOfAppHost(this IResourceBuilder<ProjectResource> builder)
    {
        if (builder.ApplicationBuilder.ExecutionContext.IsRunMode)
        {
            var environment = builder.ApplicationBuilder.Environment.EnvironmentName;
            builder.WithEnvironment("ASPNETCORE_ENVIRONMENT", environment); // what the launch profile sets
        }
        return builder;
    }

    /// <summary>
    /// Hands the services the AppHost's own settings under <paramref name="sections"/> (for example
    /// <c>Envio:Topology</c>), as environment variables. The topology in particular must be the same in every
    /// service, since the broker refuses a queue declared twice with different arguments; one source keeps it so.
    /// </summary>
    public static IResourceBuilder<T> WithSettingsFrom<T>(this IResourceBuilder<T> builder, params string[] sections)
        where T : IResourceWithEnvironment
    {
        foreach (var section in sections)
        {
            foreach (var (key, value) in builder.ApplicationBuilder.Configuration.GetSection(section).AsEnumerable(makePathsRelative: false))
            {
                if (value is not null)
                {
                    builder.WithEnvironment(key.Replace(":", "__", StringComparison.Ordinal), value);
                }
            }
        }
        return builder;
    }
}
