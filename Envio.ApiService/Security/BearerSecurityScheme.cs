using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Envio.ApiService.Security;

/// <summary>
/// Declares the bearer scheme in the OpenAPI document, and on each protected operation the scope it needs, so that
/// the interactive reference (Scalar) asks for a token and sends it.
/// </summary>
internal sealed class BearerSecurityScheme : IOpenApiDocumentTransformer, IOpenApiOperationTransformer
{
    public const string Name = JwtBearerDefaults.AuthenticationScheme;

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[Name] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            // Unchanged since orders were the only type (clients' generated code carries it); each operation lists the
            // scopes that grant it, and the document's description says what envio.send.{plural} is.
            Description = $"An access token (JWT) with the scope `{Scopes.Send}` for orders or `{Scopes.Admin}` for the " +
                "error queue. In development: `dotnet user-jwts create --project Envio.ApiService --scope envio.send`.",
        };
        return Task.CompletedTask;
    }

    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var scope = context.Description.ActionDescriptor.EndpointMetadata
            .OfType<Microsoft.AspNetCore.Authorization.IAuthorizeData>().Select(a => a.Policy).LastOrDefault(p => p is not null);
        if (scope is not null)
        {
            // One requirement per scope that grants it: any of them will do.
            operation.Security ??= [];
            foreach (var granting in Scopes.GrantedBy(scope))
            {
                operation.Security.Add(new OpenApiSecurityRequirement
                {
                    [new OpenApiSecuritySchemeReference(Name, context.Document)] = [granting],
                });
            }
        }
        return Task.CompletedTask;
    }
}
