namespace Envio.AppHost.Hosting;

/// <summary>A service role's broker user: its fixed name (<see cref="BrokerPermissions.UserNameOf"/>) and its password, an AppHost parameter.</summary>
public sealed record BrokerUser(BrokerRole Role, ParameterResource Password)
{
    public string UserName => BrokerPermissions.UserNameOf(Role);
}

/// <summary>A broker the AppHost runs, which creates a user for each service role (see <see cref="BrokerPermissions"/>).</summary>
public interface IBrokerWithUsers : IResourceWithConnectionString
{
    /// <summary>The administrator's name: the only <c>user_id</c> the consumers take commands from.</summary>
    ParameterResource UserNameParameter { get; }

    /// <summary>The services' users; the connection string itself (<see cref="IResourceWithConnectionString"/>) is the administrator's.</summary>
    IReadOnlyList<BrokerUser> ServiceUsers { get; }

    /// <summary>The connection string of the same broker, as <paramref name="user"/>.</summary>
    ReferenceExpression ConnectionStringAs(BrokerUser user);
}

internal static class BrokerUserExtensions
{
    /// <summary>Where the API finds the administrator's connection string, for operators' calls and declaring the topology.</summary>
    public const string AdminConnectionSuffix = "-admin";

    /// <summary>
    /// The service's connection string to <paramref name="broker"/> (<c>ConnectionStrings__{name}</c>), as the user of
    /// its <paramref name="role"/>; the API also gets the administrator's (<c>ConnectionStrings__{name}-admin</c>). An
    /// existing broker (a connection string given to the AppHost) is referenced as it is: its users are ops' choice.
    /// The consumer takes pause and resume from the administrator only (<c>Envio__Topology__ControlUser</c>).
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithBrokerUser(
        this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString> broker, BrokerRole role)
    {
        if (broker.Resource is not IBrokerWithUsers withUsers)
        {
            return service.WithReference(broker);
        }
        var user = withUsers.ServiceUsers.Single(u => u.Role == role);
        service.WithReferenceRelationship(broker.Resource)
            .WithEnvironment($"ConnectionStrings__{broker.Resource.Name}", withUsers.ConnectionStringAs(user));
        return role == BrokerRole.Api
            ? service.WithEnvironment($"ConnectionStrings__{broker.Resource.Name}{AdminConnectionSuffix}", broker.Resource.ConnectionStringExpression)
            // Pause and resume from the administrator only: the broker checks that a message's user_id is its sender.
            : service.WithEnvironment("Envio__Topology__ControlUser", withUsers.UserNameParameter);
    }
}
