using Microsoft.Extensions.Configuration;

namespace Envio.AppHost.Hosting;

internal static class ServiceSettings
{
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
