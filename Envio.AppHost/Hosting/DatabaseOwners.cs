namespace Envio.AppHost.Hosting;

/// <summary>
/// The consumer's two identities on its database: the runtime one (the connection <c>{name}</c>), which writes the
/// batches and may only select and insert, and the schema's owner (<c>{name}-migrations</c>), which runs the
/// migrations and grants the runtime one its rights. The AppHost makes both for its local PostgreSQL; for an existing
/// server, ops give <c>ConnectionStrings:{name}-migrations</c> beside <c>ConnectionStrings:{name}</c>, or one identity
/// does both (as before).
/// </summary>
public static class DatabaseOwners
{
    public const string Suffix = "-migrations";

    /// <summary>References <paramref name="database"/>, and its owner's connection where the model has one; waits for both.</summary>
    public static IResourceBuilder<ProjectResource> WithDatabase(
        this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString> database)
    {
        service.WithReference(database).WaitFor(database);
        if (database.ApplicationBuilder.Resources.OfType<IResourceWithConnectionString>()
                .FirstOrDefault(r => r.Name == database.Resource.Name + Suffix) is { } owner)
        {
            var ownerBuilder = database.ApplicationBuilder.CreateResourceBuilder(owner);
            service.WithReference(ownerBuilder).WaitFor(ownerBuilder);
        }
        return service;
    }
}
