using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Envio.AppHost.Hosting;

/// <summary>
/// PostgreSQL from the Debian package, run by the AppHost on loopback with a private data directory. It accepts TLS
/// connections only, and its clients verify its certificate against the run's authority and its host name.
/// </summary>
public sealed class PostgresProcessResource(
    string name, string command, string workingDirectory, ParameterResource userName, ParameterResource password,
    string caCertificatePath)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    internal const string PrimaryEndpointName = "tcp";

    public EndpointReference PrimaryEndpoint => field ??= new(this, PrimaryEndpointName);

    public ParameterResource UserNameParameter { get; } = userName;

    public ParameterResource PasswordParameter { get; } = password;

    public List<PostgresProcessDatabaseResource> Databases { get; } = [];

    /// <summary>The authority clients trust for this server (and nothing else: Npgsql's VerifyFull with a root certificate).</summary>
    public string CaCertificatePath { get; } = caCertificatePath;

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"Host={PrimaryEndpoint.Property(EndpointProperty.IPV4Host)};Port={PrimaryEndpoint.Property(EndpointProperty.Port)};Username={UserNameParameter};Password={PasswordParameter};SSL Mode=VerifyFull;Root Certificate={CaCertificatePath}");
}

/// <summary>
/// A database on a <see cref="PostgresProcessResource"/>, created by the AppHost once the server is ready, with two
/// roles of its own: <see cref="OwnerRole"/> owns it and runs the migrations (<see cref="Owner"/>, the connection
/// <c>{name}-migrations</c>); <see cref="WriterRole"/>, whose connection string this is, writes the batches with what the
/// owner grants it (select and insert). Neither is the server's superuser, which only the AppHost and tests use.
/// </summary>
public sealed class PostgresProcessDatabaseResource(
    string name, string databaseName, PostgresProcessResource parent, ParameterResource ownerPassword, ParameterResource writerPassword)
    : Resource(name), IResourceWithParent<PostgresProcessResource>, IResourceWithConnectionString
{
    public PostgresProcessResource Parent { get; } = parent;

    public string DatabaseName { get; } = databaseName;

    public string OwnerRole => $"{DatabaseName}_owner";

    public string WriterRole => $"{DatabaseName}_writer";

    public ParameterResource OwnerPassword { get; } = ownerPassword;

    public ParameterResource WriterPassword { get; } = writerPassword;

    public PostgresProcessDatabaseOwnerResource Owner => field ??= new($"{Name}{DatabaseOwners.Suffix}", this);

    public ReferenceExpression ConnectionStringExpression => ConnectionAs(WriterRole, WriterPassword);

    internal ReferenceExpression ConnectionAs(string role, ParameterResource password) => ReferenceExpression.Create(
        $"Host={Parent.PrimaryEndpoint.Property(EndpointProperty.IPV4Host)};Port={Parent.PrimaryEndpoint.Property(EndpointProperty.Port)};Username={role};Password={password};SSL Mode=VerifyFull;Root Certificate={Parent.CaCertificatePath};Database={DatabaseName}");
}

/// <summary>The database's owner connection: the consumer's migrations, and what tests do as a database administrator.</summary>
public sealed class PostgresProcessDatabaseOwnerResource(string name, PostgresProcessDatabaseResource database)
    : Resource(name), IResourceWithConnectionString
{
    public PostgresProcessDatabaseResource Database { get; } = database;

    public ReferenceExpression ConnectionStringExpression => Database.ConnectionAs(Database.OwnerRole, Database.OwnerPassword);
}

internal static class PostgresProcessBuilderExtensions
{
    private const string ServiceAccount = "postgres"; // PostgreSQL refuses to run as root.

    /// <summary>TLS or nothing: a connection without TLS matches the reject line (and no other) and is refused.</summary>
    internal const string HostBasedAuthentication = """
        # Envio: every TCP connection uses TLS; passwords are checked with SCRAM.
        local     all all              scram-sha-256
        hostnossl all all all          reject
        hostssl   all all 127.0.0.1/32 scram-sha-256
        hostssl   all all ::1/128      scram-sha-256
        """;

    public static IResourceBuilder<PostgresProcessResource> AddPostgresProcess(this IDistributedApplicationBuilder builder, string name)
    {
        var workspace = LocalProcessWorkspace.For(builder);
        var bin = LocalBinaries.PostgresBin(builder.Configuration);
        var directory = Path.Combine(workspace.RunDirectory, name);
        var dataDirectory = Path.Combine(directory, "data");
        var port = LoopbackPorts.Free();
        var certificates = DevelopmentCertificates.For(builder);
        var tlsDirectory = Path.Combine(directory, "tls");
        var hbaFile = Path.Combine(directory, "pg_hba.conf");

        var userName = builder.AddParameter($"{name}-username", "envio", publishValueAsDefault: true);
        var password = builder.AddGeneratedPassword($"{name}-password");

        var (command, prefix) = AsServiceAccount(Path.Combine(bin, "postgres"));
        var postgres = new PostgresProcessResource(
            name, command, workspace.RunDirectory, userName.Resource, password.Resource, certificates.CaCertificatePath);

        builder.Services.AddHealthChecks().AddNpgSql(
            _ => postgres.CurrentConnectionString() + ";Database=postgres",
            name: $"{name}_check");

        return builder.AddResource(postgres)
            .WithEndpoint(port: port, targetPort: port, name: PostgresProcessResource.PrimaryEndpointName, isProxied: false)
            .WithArgs([.. prefix, "-D", dataDirectory, "-p", port.ToString(CultureInfo.InvariantCulture),
                "-c", "listen_addresses=127.0.0.1", "-k", dataDirectory,
                "-c", "ssl=on", "-c", "ssl_min_protocol_version=TLSv1.2",
                "-c", $"ssl_cert_file={Path.Combine(tlsDirectory, "server.crt")}", "-c", $"ssl_key_file={Path.Combine(tlsDirectory, "server.key")}",
                "-c", $"hba_file={hbaFile}"])
            .WithEnvironment(LocalProcessWorkspace.MarkerVariable, workspace.RunDirectory)
            .OnBeforeResourceStarted(async (resource, _, ct) =>
            {
                workspace.DirectoryFor(name);
                if (Environment.IsPrivilegedProcess)
                {
                    workspace.LetGroupPassThrough(ServiceAccount); // postgres reaches its data directory through root's
                }
                certificates.EnsureWritten();
                await InitDbAsync(bin, directory, dataDirectory,
                    await resource.UserNameParameter.GetValueAsync(ct), await resource.PasswordParameter.GetValueAsync(ct), ct);
                // PostgreSQL reads its key only when the key belongs to its account and is private (0600).
                var (certificate, key) = certificates.CopyServerFilesTo(tlsDirectory);
                await File.WriteAllTextAsync(hbaFile, HostBasedAuthentication, ct);
                if (Environment.IsPrivilegedProcess)
                {
                    await RunAsync("chown", [$"{ServiceAccount}:{ServiceAccount}", tlsDirectory, certificate, key, hbaFile], ct);
                }
            })
            .OnResourceReady(async (resource, ready, ct) =>
            {
                await using var connection = new NpgsqlConnection(await resource.ConnectionStringExpression.GetValueAsync(ct) + ";Database=postgres");
                await connection.OpenAsync(ct);
                foreach (var database in resource.Databases)
                {
                    // Each start sets the roles' passwords again (a rotated parameter takes effect) and the owner.
                    foreach (var (role, password) in new[] { (database.OwnerRole, database.OwnerPassword), (database.WriterRole, database.WriterPassword) })
                    {
                        await using var setRole = new NpgsqlCommand(RoleStatement(role, (await password.GetValueAsync(ct))!), connection);
                        await setRole.ExecuteNonQueryAsync(ct);
                    }
                    await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", connection);
                    exists.Parameters.Add(new() { Value = database.DatabaseName });
                    var (databaseName, ownerRole) = (QuoteIdentifier(database.DatabaseName), QuoteIdentifier(database.OwnerRole));
                    await using var create = new NpgsqlCommand(
                        await exists.ExecuteScalarAsync(ct) is null ? $"CREATE DATABASE {databaseName} OWNER {ownerRole}" : $"ALTER DATABASE {databaseName} OWNER TO {ownerRole}", connection);
                    await create.ExecuteNonQueryAsync(ct);
                    await database.MarkRunningAsync(ready.Services);
                    await database.Owner.MarkRunningAsync(ready.Services);
                }
            })
            .WithHealthCheck($"{name}_check")
            .ExcludeFromManifest();
    }

    public static IResourceBuilder<PostgresProcessDatabaseResource> AddDatabase(
        this IResourceBuilder<PostgresProcessResource> builder, string name, string? databaseName = null)
    {
        var database = new PostgresProcessDatabaseResource(name, databaseName ?? name, builder.Resource,
            builder.ApplicationBuilder.AddGeneratedPassword($"{name}-owner-password").Resource,
            builder.ApplicationBuilder.AddGeneratedPassword($"{name}-writer-password").Resource);
        builder.Resource.Databases.Add(database);

        builder.ApplicationBuilder.Services.AddHealthChecks().AddNpgSql(
            _ => database.CurrentConnectionString(),
            name: $"{name}_check");
        builder.ApplicationBuilder.AddResource(database.Owner).WithHealthCheck($"{name}_check").ExcludeFromManifest();

        return builder.ApplicationBuilder.AddResource(database)
            .WithHealthCheck($"{name}_check")
            .ExcludeFromManifest();
    }

    /// <summary>A login role, no superuser, created or given its password again (DDL takes no parameters: a quoted literal).</summary>
    internal static string RoleStatement(string role, string password)
    {
        var literal = $"'{password.Replace("'", "''", StringComparison.Ordinal)}'";
        return $"""
            DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {Literal(role)}) THEN
                    CREATE ROLE {QuoteIdentifier(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal};
                ELSE
                    ALTER ROLE {QuoteIdentifier(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal};
                END IF;
            END $$
            """;
    }

    private static string Literal(string text) => $"'{text.Replace("'", "''", StringComparison.Ordinal)}'";

    private static async Task InitDbAsync(
        string bin, string directory, string dataDirectory, string? user, string? password, CancellationToken ct)
    {
        if (File.Exists(Path.Combine(dataDirectory, "PG_VERSION")))
        {
            return; // a restart of the same run (the dashboard's start, or a test): keep the data
        }
        var passwordFile = Path.Combine(directory, "pwfile");
        await LocalProcessWorkspace.WriteSecretFileAsync(passwordFile, password!, ct);
        if (Environment.IsPrivilegedProcess)
        {
            await RunAsync("chown", ["-R", $"{ServiceAccount}:{ServiceAccount}", directory], ct);
        }

        var (command, prefix) = AsServiceAccount(Path.Combine(bin, "initdb"));
        await RunAsync(command, [.. prefix, "-D", dataDirectory, "-U", user!, $"--pwfile={passwordFile}",
            "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"], ct);
        File.Delete(passwordFile);
    }

    /// <summary>As root, run through setpriv: it execs in place, so DCP's SIGTERM reaches postgres itself.</summary>
    private static (string Command, string[] Prefix) AsServiceAccount(string executable) => Environment.IsPrivilegedProcess
        ? ("/usr/bin/setpriv", [$"--reuid={ServiceAccount}", $"--regid={ServiceAccount}", "--init-groups", executable])
        : (executable, []);

    private static async Task RunAsync(string command, string[] arguments, CancellationToken ct)
    {
        using var process = Process.Start(new ProcessStartInfo(command, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new DistributedApplicationException($"Could not start {command}.");
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0)
        {
            throw new DistributedApplicationException(
                $"{command} {string.Join(' ', arguments)} failed ({process.ExitCode}): {await error}{await output}");
        }
    }

    private static string QuoteIdentifier(string identifier) => $"\"{identifier.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
}
