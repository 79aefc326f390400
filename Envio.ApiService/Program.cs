using Envio.ApiService.Endpoints;
using Envio.ApiService.Messaging;
using Envio.ApiService.Security;
using Envio.Contracts;
using Envio.Messaging;
using Envio.Contracts.Security;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Scalar.AspNetCore;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddRabbitMQClientOverTls("messaging");
builder.AddRabbitMQAdminClientOverTls("messaging"); // operators' calls and the topology, as the broker's administrator when one is given

builder.Services.Configure<TopologyOptions>(builder.Configuration.GetSection(TopologyOptions.SectionName));
builder.Services.Configure<PublisherOptions>(builder.Configuration.GetSection(PublisherOptions.SectionName));
builder.Services.AddSingleton(KeyRing.FromConfiguration(builder.Configuration)); // stops start-up when a key is missing or malformed
builder.Services.Configure<ApiOptions>(builder.Configuration.GetSection(ApiOptions.SectionName));
builder.Services.AddSingleton<MessagePublisher>();
builder.Services.AddSingleton<UnroutableTypes>();
builder.Services.AddSingleton<QueueMismatches>();
builder.Services.AddHealthChecks().AddCheck<QueueMismatches>("queues"); // Degraded while a queue exists with other arguments than the settings give
builder.Services.AddHealthChecks().AddCheck<UnroutableTypes>("publishing"); // Degraded while a type's queue is missing
// Operators' calls and declaring the topology, apart from publishing (an alarm blocks a publishing connection whole),
// as the broker's administrator when one is given.
builder.Services.AddSingleton(services => new AdminConnection(
    services.GetKeyedService<RabbitMQ.Client.IConnectionFactory>(RabbitMQTlsExtensions.AdminConnectionName("messaging"))
    ?? services.GetRequiredService<RabbitMQ.Client.IConnectionFactory>()));
// The consumer's user may not declare the names it uses: the API declares them at start, healthy once it has.
builder.Services.AddSingleton<TopologyAtStart>();
builder.Services.AddHostedService(services => services.GetRequiredService<TopologyAtStart>());
builder.Services.AddHealthChecks().AddCheck<TopologyAtStart>("topology");
builder.Services.Configure<ErrorQueueOptions>(builder.Configuration.GetSection(ErrorQueueOptions.SectionName));
builder.Services.AddSingleton<FailedMessages>();
builder.Services.AddSingleton<ConsumerCommands>();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<BodyBudget>(); // request bodies held at once, across every client

// Who may call (bearer tokens, a policy per scope), how often and how many at once (per client), and from where.
builder.AddApiAuthentication();
builder.AddClientRateLimiting();
builder.AddTrustedProxies();
var api = builder.Configuration.GetSection(ApiOptions.SectionName).Get<ApiOptions>() ?? new ApiOptions();
foreach (var type in DataObjectTypes.Registered)
{
    api.SchemaVersionOf(type); // a version this build cannot write stops the start
}
// A stalled body ends with 408 after a grace period; RequestBody bounds the whole read (Envio:Api:BodyReadTimeout).
builder.WebHost.ConfigureKestrel(kestrel =>
    kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(api.MinBodyBytesPerSecond, TimeSpan.FromSeconds(5)));

builder.Services.AddExceptionHandler<BrokerUnavailableHandler>();
builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = ApiAuthentication.DescribeRefusal);
builder.Services.AddOpenApi(options =>
{
    // Two types that each hold a Customer get a schema each (DataObjectSchemas).
    options.CreateSchemaReferenceId = DataObjectSchemas.SchemaIdOf;
    options.AddDocumentTransformer((document, _, _) =>
        {
            // What a user sees at the top of the interactive reference (else "Envio.ApiService | v1").
            document.Info.Title = ApiReference.Title;
            document.Info.Description = ApiReference.Description;
            return Task.CompletedTask;
        })
        .AddDocumentTransformer<DataObjectSchemas>()
        .AddOperationTransformer<DataObjectSchemas>()
        .AddDocumentTransformer<BearerSecurityScheme>()
        .AddOperationTransformer<BearerSecurityScheme>();
});

var app = builder.Build();

app.UseTrustedProxies();
app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseAuthentication();
app.UseRateLimiter(); // after authentication (a client's bucket is its token's), before authorization (401s count too)
app.UseAuthorization();

// Served anonymously, so only in Development unless ops choose to (Envio:Api:PublishApiReference).
if (app.Environment.IsDevelopment() || api.PublishApiReference)
{
    app.MapOpenApi();
    app.MapScalarApiReference(options => options.WithTitle(ApiReference.Title).AddPreferredSecuritySchemes(BearerSecurityScheme.Name));
    app.MapGet("/", () => Results.Redirect("/scalar/v1")).ExcludeFromDescription();
}

app.MapDataObjectEndpoints(); // POST /api/{plural} and /batch for every registered type
app.MapErrorQueueEndpoints();
app.MapConsumerEndpoints();
// /health and /alive stay anonymous (the orchestrator probes them) and answer the status word only.
app.MapDefaultEndpoints();

app.Run();
