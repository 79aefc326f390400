using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Envio.AppHost.Hosting;

/// <summary>
/// SQL Server in a container, in the shape of Aspire's own SQL Server integration (not served here):
/// a generated secret <c>sa</c> password (for the AppHost and, deployed, the bootstrap step only), a health check, a data
/// volume, and databases the AppHost creates, each with a login of its own that the services use.
/// </summary>
/// <param name="verifyServerCertificate">
/// <c>true</c> for what is deployed (the manifest): <c>Encrypt=Mandatory</c> (TLS after TDS 7.4's pre-login; SQL Server
/// 2022 on Linux refuses strict TDS 8 connections, error 17821) with <c>TrustServerCertificate=false</c> and the server's
/// certificate pinned (<c>ServerCertificate=</c>, the file ops mount into the consumer, as deploy/compose does).
/// <c>false</c> for the development container on this machine, whose certificate SQL Server generates itself:
/// encrypted, but that certificate cannot be checked.
/// </param>
public sealed class SqlServerServerResource(string name, ParameterResource password, bool verifyServerCertificate = true)
    : ContainerResource(name), IResourceWithConnectionString
{
    /// <summary>Where the server's and the consumer's containers find the certificates (deploy/compose mounts them there).</summary>
    internal const string CertificateDirectory = "/etc/envio/tls";

    /// <summary>
    /// Connection string keywords for the deployed server: encrypted, and the certificate is the one ops gave it (the pin
    /// is consulted because TrustServerCertificate is false). The compose health check and bootstrap use the same mode.
    /// </summary>
    internal const string VerifiedEncryption = "Encrypt=Mandatory;TrustServerCertificate=false;ServerCertificate=" + CertificateDirectory + "/sqlserver.crt";

    /// <summary>Development container only: encrypted, with SQL Server's self-generated certificate taken as it is.</summary>
    internal const string DevelopmentEncryption = "Encrypt=Mandatory;TrustServerCertificate=true";

    internal const string PrimaryEndpointName = "tcp";

    public EndpointReference PrimaryEndpoint => field ??= new(this, PrimaryEndpointName);

    public ParameterResource PasswordParameter { get; } = password;

    public string Encryption { get; } = verifyServerCertificate ? VerifiedEncryption : DevelopmentEncryption;

    public List<SqlServerDatabaseResource> Databases { get; } = [];

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"Server={PrimaryEndpoint.Property(EndpointProperty.IPV4Host)},{PrimaryEndpoint.Property(EndpointProperty.Port)};User ID=sa;Password={PasswordParameter};{Encryption}");
}

/// <summary>
/// A database on a <see cref="SqlServerServerResource"/>, with two logins of its own and nothing else: this connection
/// string is the writer's (<see cref="WriterLogin"/>, select and insert, granted by the consumer's migrations), and
/// <see cref="Owner"/> (<c>{name}-migrations</c>) is the owner's, which runs them. The services never get <c>sa</c>'s.
/// </summary>
public sealed class SqlServerDatabaseResource(
    string name, string databaseName, string login, ParameterResource password, ParameterResource writerPassword, SqlServerServerResource parent)
    : Resource(name), IResourceWithParent<SqlServerServerResource>, IResourceWithConnectionString
{
    public SqlServerServerResource Parent { get; } = parent;

    public string DatabaseName { get; } = databaseName;

    public string Login { get; } = login;

    public ParameterResource PasswordParameter { get; } = password;

    /// <summary>The consumer's runtime login (<see cref="SqlServerLogins.WriterLogin"/>).</summary>
    public string WriterLogin { get; } = SqlServerLogins.WriterLogin;

    public ParameterResource WriterPasswordParameter { get; } = writerPassword;

    public SqlServerDatabaseOwnerResource Owner => field ??= new($"{Name}{DatabaseOwners.Suffix}", this);

    /// <summary>Deployed only: the one-shot step that creates <see cref="Login"/> (see SqlServerDeployment).</summary>
    public IResourceBuilder<ContainerResource>? Bootstrap { get; set; }

    public ReferenceExpression ConnectionStringExpression => ConnectionAs(WriterLogin, WriterPasswordParameter);

    internal ReferenceExpression ConnectionAs(string login, ParameterResource password) => ReferenceExpression.Create(
        $"Server={Parent.PrimaryEndpoint.Property(EndpointProperty.IPV4Host)},{Parent.PrimaryEndpoint.Property(EndpointProperty.Port)};User ID={login};Password={password};{Parent.Encryption};Database={DatabaseName}");
}

/// <summary>The database's owner connection: the consumer's migrations.</summary>
public sealed class SqlServerDatabaseOwnerResource(string name, SqlServerDatabaseResource database) : Resource(name), IResourceWithConnectionString
{
    public SqlServerDatabaseResource Database { get; } = database;

    public ReferenceExpression ConnectionStringExpression => Database.ConnectionAs(Database.Login, Database.PasswordParameter);
}

internal static class SqlServerBuilderExtensions
{
    public static IResourceBuilder<SqlServerServerResource> AddSqlServer(this IDistributedApplicationBuilder builder, string name)
    {
        var password = builder.AddGeneratedSqlServerPassword($"{name}-password");
        var server = new SqlServerServerResource(name, password.Resource, verifyServerCertificate: builder.ExecutionContext.IsPublishMode);

        builder.Services.AddHealthChecks().AddSqlServer(
            _ => server.CurrentConnectionString(),
            name: $"{name}_check");

        var resource = builder.AddResource(server)
            .WithImage(SqlServerDeployment.Image, SqlServerDeployment.Tag)
            .WithImageRegistry(SqlServerDeployment.Registry)
            .WithEndpoint(targetPort: 1433, name: SqlServerServerResource.PrimaryEndpointName)
            .WithEnvironment("ACCEPT_EULA", "Y")
            .WithEnvironment(context => context.EnvironmentVariables["MSSQL_SA_PASSWORD"] = server.PasswordParameter)
            .OnResourceReady(async (resource, _, ct) =>
            {
                var administrator = (await resource.ConnectionStringExpression.GetValueAsync(ct))!;
                foreach (var database in resource.Databases)
                {
                    await SqlServerLogins.EnsureLoginOwnsDatabaseAsync(administrator, database.DatabaseName,
                        database.Login, (await database.PasswordParameter.GetValueAsync(ct))!,
                        database.WriterLogin, (await database.WriterPasswordParameter.GetValueAsync(ct))!, ct);
                }
            })
            .WithHealthCheck($"{name}_check");
        // Deployed: encryption forced with the certificate ops supply, the edition and memory set, as in deploy/compose.
        return builder.ExecutionContext.IsPublishMode ? resource.WithDeploymentConfiguration() : resource;
    }

    public static IResourceBuilder<SqlServerServerResource> WithDataVolume(this IResourceBuilder<SqlServerServerResource> builder, string volumeName) =>
        builder.WithVolume(volumeName, "/var/opt/mssql");

    public static IResourceBuilder<SqlServerDatabaseResource> AddDatabase(
        this IResourceBuilder<SqlServerServerResource> builder, string name, string? databaseName = null)
    {
        var database = new SqlServerDatabaseResource(name, databaseName ?? name, SqlServerLogins.ConsumerLogin,
            builder.ApplicationBuilder.AddGeneratedSqlServerPassword($"{name}-password").Resource,
            builder.ApplicationBuilder.AddGeneratedSqlServerPassword($"{name}-writer-password").Resource, builder.Resource);
        builder.Resource.Databases.Add(database);
        if (builder.ApplicationBuilder.ExecutionContext.IsPublishMode)
        {
            database.Bootstrap = builder.AddLoginBootstrap(database); // the AppHost is not there to create the login: a one-shot step does
        }

        // As the owner: the writer is a user of the database only once the consumer's migrations made it one.
        builder.ApplicationBuilder.Services.AddHealthChecks().AddSqlServer(
            _ => database.Owner.CurrentConnectionString(),
            name: $"{name}_check");
        builder.ApplicationBuilder.AddResource(database.Owner).WithHealthCheck($"{name}_check");

        return builder.ApplicationBuilder.AddResource(database).WithHealthCheck($"{name}_check");
    }
}
