using Envio.ApiService.Endpoints;
using Envio.ApiService.Messaging;
using Envio.Contracts.Messaging;
using Envio.Contracts.Security;
using Scalar.AspNetCore;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddRabbitMQClientOverTls("messaging");

builder.Services.Configure<TopologyOptions>(builder.Configuration.GetSection(TopologyOptions.SectionName));
builder.Services.Configure<PublisherOptions>(builder.Configuration.GetSection(PublisherOptions.SectionName));
builder.Services.AddSingleton(KeyRing.FromConfiguration(builder.Configuration)); // stops start-up when a key is missing or malformed
builder.Services.AddSingleton<OrderPublisher>();
builder.Services.AddSingleton<FailedMessages>();
builder.Services.AddSingleton(TimeProvider.System);

builder.Services.AddProblemDetails();
builder.Services.AddOpenApi(options => options.AddOperationTransformer<OrderExamples>());

var app = builder.Build();

app.UseExceptionHandler();
app.UseStatusCodePages();

app.MapOpenApi();
app.MapScalarApiReference();
app.MapGet("/", () => Results.Redirect("/scalar/v1")).ExcludeFromDescription();

app.MapOrderEndpoints();
app.MapErrorQueueEndpoints();
app.MapDefaultEndpoints();

app.Run();
