namespace Envio.Tests.Support;

/// <summary>
/// Tests that build or start the AppHost run one after another (Aspire.Hosting.Testing intercepts AppHost builders
/// process-wide, and two stacks at once would share the machine's two cores) and share one running stack.
/// </summary>
[CollectionDefinition(Name)]
public sealed class AppHostTests : ICollectionFixture<EnvioStack>
{
    public const string Name = "AppHost";
}
