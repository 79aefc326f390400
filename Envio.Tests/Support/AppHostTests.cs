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

/// <summary>
/// Tests that read Babelfish's catalog views whole run alone, after every other collection: Babelfish fails those
/// views ("unrecognized node type: 48", in its deparser) for as long as other sessions change schemas, which the store
/// tests do in parallel (seen in CI, for seconds on end). They start their own AppHost, which nothing else does then.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CatalogTests
{
    public const string Name = "Catalog, alone";
}
