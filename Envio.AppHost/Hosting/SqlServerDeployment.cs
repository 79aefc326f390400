namespace Envio.AppHost.Hosting;

/// <summary>
/// SQL Server as ops deploy it (the manifest, and deploy/compose/): encrypted connections only, with the certificate
/// ops supply in deploy/compose/certs/ (deploy/compose/sqlserver/mssql.conf), and a one-shot bootstrap step that creates
/// the consumer's login and database with the administrator's password, which only that step and the server see.
/// </summary>
internal static class SqlServerDeployment
{
    public const string Registry = "mcr.microsoft.com";
    public const string Image = "mssql/server";
    /// <summary>
    /// A pinned release, never <c>-latest</c>: an upgrade is a choice, made with a backup first (deploy/README.md). 2022
    /// and not 2025, whose containers fail to start on some CPU topologies (microsoft/mssql-docker#954).
    /// </summary>
    public const string Tag = "2022-CU27-ubuntu-22.04";

    /// <summary>
    /// The edition: Standard is licensed for production (Developer is not; Express is free but capped at 1,410 MB of
    /// buffer pool and 10 GB a database). Deploy/compose lets ops choose another with MSSQL_PID.
    /// </summary>
    public const string Edition = "Standard";

    /// <summary>
    /// sqlcmd's encryption: mandatory TLS over TDS 7.4 (<c>-Nm</c>), what the consumer uses
    /// (<see cref="SqlServerServerResource.VerifiedEncryption"/>). Not strict (TDS 8): SQL Server 2022 on Linux closes
    /// strict connections with error 17821 (microsoft/mssql-docker#878).
    /// </summary>
    internal const string SqlcmdEncryption = "-Nm";

    /// <summary>
    /// SQL Server's own memory ceiling, below the container's 3 GB limit in deploy/compose (the rest is for its
    /// threads, the tools and the page cache); its buffer pool then takes 80 % of this.
    /// </summary>
    public const int MemoryLimitMegabytes = 2560;

    /// <summary>Where the bootstrap step finds its script (deploy/compose mounts it there).</summary>
    internal const string BootstrapScript = "/etc/envio/sqlserver/bootstrap.sql";

    /// <summary>The sqlcmd of the SQL Server image.</summary>
    internal const string Sqlcmd = "/opt/mssql-tools18/bin/sqlcmd";

    public static IResourceBuilder<SqlServerServerResource> WithDeploymentConfiguration(this IResourceBuilder<SqlServerServerResource> builder)
    {
        var compose = ComposeDirectory(builder.ApplicationBuilder);
        return builder
            .WithEnvironment("MSSQL_PID", Edition)
            .WithEnvironment("MSSQL_MEMORY_LIMIT_MB", MemoryLimitMegabytes.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .WithBindMount(Path.Combine(compose, "sqlserver", "mssql.conf"), "/var/opt/mssql/mssql.conf", isReadOnly: true)
            .WithBindMount(Path.Combine(compose, "certs"), SqlServerServerResource.CertificateDirectory, isReadOnly: true);
    }

    /// <summary>
    /// The step that creates <paramref name="database"/>'s login, owner of that database only
    /// (<see cref="SqlServerLogins.CreateLoginOwningDatabase"/>, as deploy/compose/sqlserver/bootstrap.sql), over a
    /// verified link: sqlcmd encrypts (<c>-Nm</c>) and checks the certificate against the deployment's CA
    /// (<c>SSL_CERT_FILE</c>) and the host name.
    /// </summary>
    public static IResourceBuilder<ContainerResource> AddLoginBootstrap(this IResourceBuilder<SqlServerServerResource> server, SqlServerDatabaseResource database)
    {
        var compose = ComposeDirectory(server.ApplicationBuilder);
        var endpoint = server.Resource.PrimaryEndpoint;
        return server.ApplicationBuilder.AddContainer($"{server.Resource.Name}-bootstrap", Image, Tag)
            .WithImageRegistry(Registry)
            .WithEntrypoint(Sqlcmd)
            .WithArgs(context =>
            {
                context.Args.Add("-S");
                context.Args.Add(ReferenceExpression.Create($"tcp:{endpoint.Property(EndpointProperty.Host)},{endpoint.Property(EndpointProperty.Port)}"));
                foreach (var argument in new[] { SqlcmdEncryption, "-b", "-i", BootstrapScript })
                {
                    context.Args.Add(argument);
                }
            })
            // sqlcmd reads its credentials and the script's $(variables) from the environment, never the command line.
            .WithEnvironment("SQLCMDUSER", "sa")
            .WithEnvironment(context => context.EnvironmentVariables["SQLCMDPASSWORD"] = server.Resource.PasswordParameter)
            .WithEnvironment("SSL_CERT_FILE", SqlServerServerResource.CertificateDirectory + "/ca.crt")
            .WithEnvironment("ENVIO_DB_NAME", database.DatabaseName)
            .WithEnvironment("ENVIO_DB_LOGIN", database.Login)
            .WithEnvironment(context => context.EnvironmentVariables["ENVIO_DB_PASSWORD"] = database.PasswordParameter)
            .WithEnvironment("ENVIO_DB_WRITER_LOGIN", database.WriterLogin)
            .WithEnvironment(context => context.EnvironmentVariables["ENVIO_DB_WRITER_PASSWORD"] = database.WriterPasswordParameter)
            .WithBindMount(Path.Combine(compose, "sqlserver", "bootstrap.sql"), BootstrapScript, isReadOnly: true)
            .WithBindMount(Path.Combine(compose, "certs"), SqlServerServerResource.CertificateDirectory, isReadOnly: true);
    }

    /// <summary>
    /// The consumer starts once the bootstrap step created its login (deployed SQL Server only; elsewhere the AppHost
    /// creates the login itself before the database reports healthy).
    /// </summary>
    public static IResourceBuilder<T> WaitForLoginBootstrap<T>(this IResourceBuilder<T> service, IResourceBuilder<IResourceWithConnectionString> database)
        where T : IResourceWithWaitSupport =>
        database.Resource is SqlServerDatabaseResource { Bootstrap: { } bootstrap } ? service.WaitForCompletion(bootstrap) : service;

    private static string ComposeDirectory(IDistributedApplicationBuilder builder) =>
        Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..", "deploy", "compose"));
}
