using Envio.ConsumerService.Persistence;

// A web host only for /health and /alive: the consumer's work is its background services.
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddRabbitMQClient("messaging");
builder.AddEnvioStore("enviodb");

var app = builder.Build();

app.MapDefaultEndpoints();

app.Run();
