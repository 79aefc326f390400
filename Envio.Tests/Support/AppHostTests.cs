namespace Envio.Tests.Support;

/// <summary>
/// Tests that build or start the AppHost run one after another: Aspire.Hosting.Testing intercepts AppHost builders
/// process-wide, and two stacks at once would share the machine's two cores.
/// </summary>
[CollectionDefinition(Name)]
public sealed class AppHostTests
{
    public const string Name = "AppHost";
}
