using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Envio.Contracts;
using Envio.Contracts.DataObjects;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Envio.ApiService.Endpoints;

/// <summary>
/// What the OpenAPI document says about each type beyond what its record gives: the 202 answer
/// (<c>Accepted{Plural}</c>, its <c>{type}Ids</c>), a ready-to-send example of each request, and schema names that do not
/// collide. Schema ids are bare type names (<c>Customer</c>), so two types that each hold a <c>Customer</c> would merge
/// into one schema: the first type registered keeps the bare name, a later one's is prefixed with its type
/// (<c>PaymentCustomer</c>).
/// </summary>
internal sealed class DataObjectSchemas : IOpenApiDocumentTransformer, IOpenApiOperationTransformer
{
    private static readonly Dictionary<Type, string> SchemaIds = Assign(DataObjectTypes.Registered);

    /// <summary>For <see cref="OpenApiOptions.CreateSchemaReferenceId"/>: a data object's own types by their assigned id.</summary>
    public static string? SchemaIdOf(JsonTypeInfo typeInfo) =>
        SchemaIds.TryGetValue(typeInfo.Type, out var id) ? id : OpenApiOptions.CreateDefaultSchemaReferenceId(typeInfo);

    public static string AcceptedSchemaId(DataObjectType type) => "Accepted" + Naming.PascalCase(type.Plural);

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
        foreach (var type in DataObjectTypes.Registered)
        {
            document.Components.Schemas[AcceptedSchemaId(type)] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Required = new HashSet<string> { type.IdsName },
                Properties = new Dictionary<string, IOpenApiSchema>
                {
                    [type.IdsName] = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Array,
                        Items = new OpenApiSchema { Type = JsonSchemaType.String, Format = "uuid" },
                    },
                },
            };
        }
        return Task.CompletedTask;
    }

    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        if (context.Description.ActionDescriptor.EndpointMetadata.OfType<DataObjectType>().LastOrDefault() is not { } type)
        {
            return Task.CompletedTask;
        }
        if (operation.Responses?.TryGetValue("202", out var accepted) == true && accepted is OpenApiResponse response)
        {
            response.Content ??= new Dictionary<string, OpenApiMediaType>();
            response.Content["application/json"] = new OpenApiMediaType { Schema = new OpenApiSchemaReference(AcceptedSchemaId(type), context.Document) };
        }
        if (operation.RequestBody?.Content?.TryGetValue("application/json", out var media) == true)
        {
            var example = DataObjectExamples.Of(type);
            media.Example = operation.OperationId == $"Post{type.PascalName}Batch"
                ? new JsonArray(example, DataObjectExamples.Of(type, second: true))
                : example;
        }
        return Task.CompletedTask;
    }

    /// <summary>The schema id of each type a data object is made of; the first type registered keeps a bare name.</summary>
    public static Dictionary<Type, string> Assign(IEnumerable<DataObjectType> types)
    {
        var ids = new Dictionary<Type, string>();
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var type in types)
        {
            foreach (var clrType in TypesOf(type.ClrType, type.Members).Distinct())
            {
                if (ids.ContainsKey(clrType))
                {
                    continue;
                }
                var id = taken.Contains(clrType.Name) ? type.PascalName + clrType.Name : clrType.Name;
                taken.Add(id);
                ids[clrType] = id;
            }
        }
        return ids;
    }

    private static IEnumerable<Type> TypesOf(Type type, IReadOnlyList<DataObjectMember> members) =>
        members.Where(m => m.Kind != MemberKind.Value).SelectMany(m => TypesOf(m.ValueType, m.Members)).Prepend(type);
}
