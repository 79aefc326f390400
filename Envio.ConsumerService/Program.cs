using Envio.ConsumerService.Messaging;
using Envio.ConsumerService.Persistence;
using Envio.Contracts.Security;
using Envio.Messaging;

// A web host only for /health and /alive: the consumer's work is its background services.
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddRabbitMQClientOverTls("messaging");
var messageKeys = KeyRing.FromConfiguration(builder.Configuration); // stops start-up when a key is missing or malformed
builder.Services.AddSingleton(messageKeys); // opens message bodies
builder.Services.AddKeyedSingleton(KeyRing.ColumnsServiceKey, KeyRing.ForColumns(builder.Configuration, messageKeys)); // seals stored columns: the consumer's alone
builder.AddEnvioStore("enviodb"); // migrations, and the check of the tables against the types, run before the consumer starts

builder.Services.Configure<TopologyOptions>(builder.Configuration.GetSection(TopologyOptions.SectionName));
builder.Services.Configure<ConsumerOptions>(builder.Configuration.GetSection(ConsumerOptions.SectionName));
builder.Services.AddSingleton<FailurePublisher>();
builder.Services.AddSingleton<MessageDecoder>();
builder.Services.AddSingleton<StoreOutage>();
builder.Services.AddHealthChecks().AddCheck<StoreOutage>("store-outage"); // Degraded while consuming waits for the database
builder.Services.AddSingleton<BatchWriter>();
builder.Services.AddSingleton<BatchHandlers>(); // one per registered type of data object
builder.Services.AddSingleton<ConsumingSwitch>(); // an operator's pause and resume, per type
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
