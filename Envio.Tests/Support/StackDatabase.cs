using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.Tests.Support;

/// <summary>The stack's database, as the tests reach it.</summary>
public static class StackDatabase
{
    public const string Name = "enviodb";

    /// <summary>
    /// The owner's connection (the consumer's migrations role, <c>enviodb-migrations</c>), for what a test does as the
    /// database's administrator: read every table, lock one, empty one. The consumer itself writes as a role that may
    /// only select and insert (<c>enviodb</c>). A stack given one external connection string has only that one.
    /// </summary>
    public static async Task<string> OwnerConnectionStringAsync(this DistributedApplication app, CancellationToken ct = default)
    {
        var owner = Name + Envio.AppHost.Hosting.DatabaseOwners.Suffix;
        var model = app.Services.GetRequiredService<DistributedApplicationModel>();
        return (await app.GetConnectionStringAsync(model.Resources.Any(r => r.Name == owner) ? owner : Name, ct))!;
    }
}
