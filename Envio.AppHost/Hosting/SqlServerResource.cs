using Microsoft.Data.SqlClient;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.AppHost.Hosting;

/// <summary>
/// SQL Server in a container, in the shape of Aspire's own SQL Server integration (not served here):
/// a generated secret <c>sa</c> password, a health check, a data volume, and databases the AppHost creates.
/// </summary>
public sealed class SqlServerServerResource(string name, ParameterResource password)
    : ContainerResource(name), IResourceWithConnectionString
{
    internal const string PrimaryEndpointName = "tcp";

    public EndpointReference PrimaryEndpoint => field ??= new(this, PrimaryEndpointName);

    public ParameterResource PasswordParameter { get; } = password;

    public List<SqlServerDatabaseResource> Databases { get; } = [];

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"Server={PrimaryEndpoint.Property(EndpointProperty.IPV4Host)},{PrimaryEndpoint.Property(EndpointProperty.Port)};User ID=sa;Password={PasswordParameter};TrustServerCertificate=true");
}

/// <summary>A database on a <see cref="SqlServerServerResource"/>.</summary>
public sealed class SqlServerDatabaseResource(string name, string databaseName, SqlServerServerResource parent)
    : Resource(name), IResourceWithParent<SqlServerServerResource>, IResourceWithConnectionString
{
    public SqlServerServerResource Parent { get; } = parent;

    public string DatabaseName { get; } = databaseName;

    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"{Parent};Database={DatabaseName}");
}

internal static class SqlServerBuilderExtensions
{
    /// <summary>Creates the database when it does not exist yet; parsed by the T-SQL tests like every other statement.</summary>
    internal const string CreateDatabaseIfMissing = """
        IF DB_ID(@name) IS NULL
        BEGIN
            DECLARE @create nvarchar(300) = N'CREATE DATABASE ' + QUOTENAME(@name);
            EXEC sys.sp_executesql @create;
        END
        """;

    public static IResourceBuilder<SqlServerServerResource> AddSqlServer(this IDistributedApplicationBuilder builder, string name)
    {
        // SQL Server's policy: at least 8 characters from three of upper, lower, digits and symbols.
        var password = builder.AddParameter($"{name}-password",
            new GenerateParameterDefault { MinLength = 24, MinLower = 1, MinUpper = 1, MinNumeric = 1, Special = false },
            secret: true, persist: true);
        var server = new SqlServerServerResource(name, password.Resource);

        builder.Services.AddHealthChecks().AddSqlServer(
            _ => server.CurrentConnectionString(),
            name: $"{name}_check");

        return builder.AddResource(server)
            .WithImage("mssql/server", "2022-latest")
            .WithImageRegistry("mcr.microsoft.com")
            .WithEndpoint(targetPort: 1433, name: SqlServerServerResource.PrimaryEndpointName)
            .WithEnvironment("ACCEPT_EULA", "Y")
            .WithEnvironment(context => context.EnvironmentVariables["MSSQL_SA_PASSWORD"] = server.PasswordParameter)
            .OnResourceReady(async (resource, _, ct) =>
            {
                await using var connection = new SqlConnection(await resource.ConnectionStringExpression.GetValueAsync(ct));
                await connection.OpenAsync(ct);
                foreach (var database in resource.Databases)
                {
                    await using var create = new SqlCommand(CreateDatabaseIfMissing, connection);
                    create.Parameters.AddWithValue("@name", database.DatabaseName);
                    await create.ExecuteNonQueryAsync(ct);
                }
            })
            .WithHealthCheck($"{name}_check");
    }

    public static IResourceBuilder<SqlServerServerResource> WithDataVolume(this IResourceBuilder<SqlServerServerResource> builder, string volumeName) =>
        builder.WithVolume(volumeName, "/var/opt/mssql");

    public static IResourceBuilder<SqlServerDatabaseResource> AddDatabase(
        this IResourceBuilder<SqlServerServerResource> builder, string name, string? databaseName = null)
    {
        var database = new SqlServerDatabaseResource(name, databaseName ?? name, builder.Resource);
        builder.Resource.Databases.Add(database);

        builder.ApplicationBuilder.Services.AddHealthChecks().AddSqlServer(
            _ => database.CurrentConnectionString(),
            name: $"{name}_check");

        return builder.ApplicationBuilder.AddResource(database).WithHealthCheck($"{name}_check");
    }
}
