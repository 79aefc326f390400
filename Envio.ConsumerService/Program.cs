using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Messaging;

// A web host only for /health and /alive: the consumer's work is its background services.
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddRabbitMQClientOverTls("messaging");
builder.AddKeyRings(); // the messages' and the stored columns' (the consumer's alone); a missing or malformed key stops the start
builder.AddEnvioStore("enviodb"); // migrations, and the check of the tables against the types, run before the consumer starts

builder.Services.Configure<TopologyOptions>(builder.Configuration.GetSection(TopologyOptions.SectionName));
builder.Services.Configure<ConsumerOptions>(builder.Configuration.GetSection(ConsumerOptions.SectionName));
builder.Services.AddSingleton<FailurePublisher>();
builder.Services.AddSingleton<MessageDecoder>();
builder.Services.AddSingleton<StoreOutage>();
builder.Services.AddHealthChecks().AddCheck<StoreOutage>("store-outage"); // Degraded while consuming waits for the database
builder.Services.AddSingleton<BatchWriter>();
builder.Services.AddSingleton<BatchHandlers>(); // one per registered type of data object
builder.Services.AddSingleton<ConsumingSwitch>(); // an operator's pause and resume, per type (and the envio.consumer.operator_paused gauge)
builder.Services.AddHostedService<ConsumerControlListener>(); // keeps the switch at the operators' kept state
builder.Services.AddHealthChecks().AddCheck<ConsumingSwitch>("consuming-switch"); // Degraded while a type is paused
builder.Services.AddSingleton<QueueMismatches>();
builder.Services.AddHealthChecks().AddCheck<QueueMismatches>("queues"); // Degraded while a queue exists with other arguments than the settings give
builder.Services.AddSingleton<Consumer>();
builder.Services.AddHostedService(services => services.GetRequiredService<Consumer>());
builder.Services.AddHealthChecks().AddCheck<Consumer>("consuming"); // Degraded while a type's sessions keep failing
builder.Services.AddHostedService<QueueDepthMonitor>(); // the envio.queue.depth gauge

var app = builder.Build();

app.MapDefaultEndpoints();

app.Run();
