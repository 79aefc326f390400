namespace Envio.AppHost.Hosting;

/// <summary>
/// Passwords the AppHost generates once and keeps in its user secrets (in a deployment, inputs of the manifest).
/// Letters and digits only: they travel unquoted in URIs, connection strings and sqlcmd's variables.
/// </summary>
internal static class GeneratedPasswords
{
    public static IResourceBuilder<ParameterResource> AddGeneratedPassword(this IDistributedApplicationBuilder builder, string name) =>
        builder.AddParameter(name, new GenerateParameterDefault { MinLength = 24, Special = false }, secret: true, persist: true);

    /// <summary>The same, meeting SQL Server's policy: characters from three of upper, lower, digits and symbols.</summary>
    public static IResourceBuilder<ParameterResource> AddGeneratedSqlServerPassword(this IDistributedApplicationBuilder builder, string name) =>
        builder.AddParameter(name, new GenerateParameterDefault { MinLength = 24, MinLower = 1, MinUpper = 1, MinNumeric = 1, Special = false },
            secret: true, persist: true);
}
