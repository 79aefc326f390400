using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Messaging;
using Envio.Contracts.Security;

// A web host only for /health and /alive: the consumer's work is its background services.
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddRabbitMQClientOverTls("messaging");
builder.Services.AddSingleton(KeyRing.FromConfiguration(builder.Configuration)); // stops start-up when a key is missing or malformed
builder.AddEnvioStore("enviodb"); // migrations run before the consumer starts

builder.Services.Configure<TopologyOptions>(builder.Configuration.GetSection(TopologyOptions.SectionName));
builder.Services.Configure<ConsumerOptions>(builder.Configuration.GetSection(ConsumerOptions.SectionName));
builder.Services.AddSingleton<FailurePublisher>();
builder.Services.AddSingleton<OrderDecoder>();
builder.Services.AddSingleton<StoreOutage>();
builder.Services.AddHealthChecks().AddCheck<StoreOutage>("store-outage"); // Degraded while consuming waits for the database
builder.Services.AddSingleton<BatchWriter>();
builder.Services.AddSingleton<ConsumingSwitch>(); // an operator's pause and resume
builder.Services.AddHostedService(services => services.GetRequiredService<ConsumingSwitch>());
builder.Services.AddHealthChecks().AddCheck<ConsumingSwitch>("consuming-switch"); // Degraded while paused
builder.Services.AddHostedService<OrderConsumer>();
builder.Services.AddHostedService<QueueDepthMonitor>(); // the envio.queue.depth gauge

var app = builder.Build();

app.MapDefaultEndpoints();

app.Run();
