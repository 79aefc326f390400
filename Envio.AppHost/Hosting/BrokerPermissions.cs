using Envio.Contracts;

namespace Envio.AppHost.Hosting;

/// <summary>
/// Least privilege on the broker: Envio's user works in a virtual host of its own and may configure, write and read
/// only the exchanges and queues of the registered data objects (<c>envio.orders</c>, <c>envio.payments</c> and the
/// names derived from them in <c>Envio.Messaging/Topology.cs</c>). No client uses server-named (<c>amq.gen-…</c>)
/// queues or the default exchange, so neither is allowed. The user has no management tags, and no <c>guest</c> user exists.
/// </summary>
public static class BrokerPermissions
{
    public const string VirtualHost = "envio";

    /// <summary>
    /// <c>envio.{plural}</c> and <c>envio.{plural}.*</c> of every registered type, for configure, write and read alike
    /// (<c>^envio[.](orders|payments)([.].+)?$</c>). Written with <c>[.]</c> rather than <c>\.</c> so that it reads the
    /// same in rabbitmq.conf, JSON definitions and shell commands.
    /// </summary>
    public static string Resources { get; } =
        $"^envio[.]({string.Join("|", DataObjectTypes.Registered.Select(type => type.Plural))})([.].+)?$";

    /// <summary>
    /// What a deployed broker allows (deploy/compose/rabbitmq/rabbitmq.conf): every name a type of data object can have
    /// (<c>envio.{plural}</c> and below). A deployed broker keeps the permissions of its first boot, so a list of
    /// today's types would refuse the next type a build adds; the virtual host is Envio's alone either way.
    /// </summary>
    public const string DeployedResources = "^envio[.][a-z0-9-]+([.].+)?$";

    /// <summary>rabbitmq.conf lines that make the first boot create exactly this user and virtual host.</summary>
    internal static string[] Configuration(string user, string password, string resources) =>
    [
        $"default_vhost = {VirtualHost}",
        $"default_user = {user}",
        $"default_pass = {password}",
        "default_user_tags.administrator = false", // the default user would otherwise be an administrator
        $"default_permissions.configure = {resources}",
        $"default_permissions.write = {resources}",
        $"default_permissions.read = {resources}",
        "loopback_users = none", // the list only ever named guest, which is never created
    ];
}
