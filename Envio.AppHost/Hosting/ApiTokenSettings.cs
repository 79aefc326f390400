namespace Envio.AppHost.Hosting;

internal static class ApiTokenSettings
{
    /// <summary>
    /// In a deployment (publish mode), the API trusts the tokens of an OIDC authority: the manifest asks for the
    /// authority's URL and the audience the tokens name (this API), as the parameters <c>api-auth-authority</c> and
    /// <c>api-auth-audience</c>, and hands them to the API in ASP.NET Core's standard <c>Authentication:Schemes:Bearer</c>
    /// section. When run locally, the API's own configuration decides (<c>dotnet user-jwts</c> in development).
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithTokenAuthority(this IResourceBuilder<ProjectResource> api)
    {
        if (!api.ApplicationBuilder.ExecutionContext.IsPublishMode)
        {
            return api;
        }
        var authority = api.ApplicationBuilder.AddParameter("api-auth-authority");
        var audience = api.ApplicationBuilder.AddParameter("api-auth-audience");
        return api
            .WithEnvironment("Authentication__Schemes__Bearer__Authority", authority)
            .WithEnvironment("Authentication__Schemes__Bearer__ValidAudiences__0", audience);
    }
}
