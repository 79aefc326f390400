using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Envio.Contracts;

namespace Envio.AppHost.Hosting;

/// <summary>
/// Least privilege on the broker: Envio works in a virtual host of its own, and each role connects as a user of its
/// own that may do only what the role needs (<see cref="BrokerRole"/>). No client uses server-named (<c>amq.gen-…</c>)
/// queues or the default exchange, so no user may. No user has management tags, and no <c>guest</c> user exists.
/// </summary>
public static class BrokerPermissions
{
    public const string VirtualHost = "envio";

    /// <summary>The types' part of every name: today's registered plurals (<c>(orders|payments)</c>).</summary>
    public static string RegisteredTypes { get; } = $"({string.Join("|", DataObjectTypes.Registered.Select(type => type.Plural))})";

    /// <summary>
    /// The types' part of every name on a deployed broker: any plural. A deployed broker keeps the permissions it was
    /// given, so a list of today's types would refuse the next type a build adds; the virtual host is Envio's alone either way.
    /// </summary>
    public const string AnyType = "[a-z0-9-]+";

    /// <summary>What the administrator may reach on a deployed broker (the definitions deploy/compose/make-secrets.sh writes).</summary>
    public static string DeployedResources { get; } = Of(BrokerRole.Administrator, AnyType).Configure;

    /// <summary>
    /// The user of a service's role: <c>envio-api</c>, <c>envio-consumer</c>. Fixed, so that every deployment's
    /// permissions, definitions and audit logs name the same users; the administrator's name is the deployment's choice.
    /// </summary>
    public static string UserNameOf(BrokerRole role) => role switch
    {
        BrokerRole.Api => "envio-api",
        BrokerRole.Consumer => "envio-consumer",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "The administrator's name is a parameter (messaging-username)."),
    };

    /// <summary>
    /// What each role may configure, write and read, for the types matched by <paramref name="types"/> (see
    /// <see cref="BrokerRole"/>; Envio.Messaging/Topology.cs and ConsumerControl.cs name what these patterns cover).
    /// </summary>
    public static Permissions Of(BrokerRole role, string types)
    {
        var type = $"envio[.]{types}";
        return role switch
        {
            BrokerRole.Administrator => new($"^{type}([.].+)?$", $"^{type}([.].+)?$", $"^{type}([.].+)?$"),
            // Publishing to a type's work exchange is all: no declaring, no reading, no other exchange.
            BrokerRole.Api => new("^$", $"^{type}$", "^$"),
            // Consume the work queues; its own control queues (envio.{plural}.control.consumer.{id}): declare, bind and
            // consume them; bind them to the control exchange and read the kept pause state (read); publish to the
            // retry and error exchanges and its confirmations to the replies exchange (write). The topology, the
            // control names and the kept state are the administrator's to declare.
            BrokerRole.Consumer => new(
                $"^{type}[.]control[.]consumer[.].+$",
                $"^{type}([.]error|[.]retry|[.]control[.]replies|[.]control[.]consumer[.].+)$",
                $"^{type}([.]control([.]state|[.]consumer[.].+)?)?$"),
            _ => throw new ArgumentOutOfRangeException(nameof(role), role, null),
        };
    }

    /// <summary>
    /// RabbitMQ definitions (the JSON <c>load_definitions</c> imports at every boot) that create Envio's virtual host and
    /// its users with their permissions. A node with definitions to load creates no default user (and so no guest).
    /// The passwords are stored as RabbitMQ's own salted SHA-256 hashes.
    /// </summary>
    internal static string Definitions(IEnumerable<(BrokerRole Role, string User, string Password)> users, string types)
    {
        var list = users.ToList();
        return JsonSerializer.Serialize(new
        {
            vhosts = new[] { new { name = VirtualHost } },
            users = list.Select(u => new
            {
                name = u.User,
                password_hash = PasswordHash(u.Password),
                hashing_algorithm = "rabbit_password_hashing_sha256",
                tags = "",
            }),
            permissions = list.Select(u => (u.User, Permissions: Of(u.Role, types))).Select(u => new
            {
                user = u.User,
                vhost = VirtualHost,
                configure = u.Permissions.Configure,
                write = u.Permissions.Write,
                read = u.Permissions.Read,
            }),
        });
    }

    /// <summary>RabbitMQ's <c>rabbit_password_hashing_sha256</c>: base64 of a 4-byte salt, then SHA-256 of salt and password.</summary>
    internal static string PasswordHash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(4);
        return Convert.ToBase64String([.. salt, .. SHA256.HashData([.. salt, .. Encoding.UTF8.GetBytes(password)])]);
    }
}

/// <summary>A user's three permission patterns in Envio's virtual host.</summary>
public sealed record Permissions(string Configure, string Write, string Read);

/// <summary>Who connects to the broker, each as a user of its own.</summary>
public enum BrokerRole
{
    /// <summary>
    /// Declares the topology and runs operators' calls (the error queue, pause and resume): the API's admin
    /// connection. The broker's first user; the AppHost's own checks and the tests connect as it too.
    /// </summary>
    Administrator,

    /// <summary>The API's publishing connection.</summary>
    Api,

    /// <summary>The consumer.</summary>
    Consumer,
}
