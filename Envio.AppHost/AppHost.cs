using Envio.AppHost.Hosting;
using Envio.AppHost.Operations;
using Microsoft.Extensions.Configuration;

var builder = DistributedApplication.CreateBuilder(args);

// Broker and database: containers, local processes or existing servers (Envio:Hosting; see Hosting/).
var hosting = builder.ChooseHosting();

var messaging = builder.AddMessaging("messaging", hosting).WithQueueDepths();
var enviodb = builder.AddEnvioDatabase("enviodb", hosting);

// Deployed, the API serves plain HTTP on 8080 behind the server's TLS-terminating proxy (deploy/compose): that one
// endpoint, external. Developing, the launch profile's HTTP and HTTPS endpoints.
var api = (builder.ExecutionContext.IsPublishMode
        ? builder.AddProject<Projects.Envio_ApiService>("api", launchProfileName: null).WithHttpEndpoint(targetPort: 8080, name: "http")
        : builder.AddProject<Projects.Envio_ApiService>("api"))
    .WithEnvironmentOfAppHost()
    .WithBrokerUser(messaging, BrokerRole.Api).WaitFor(messaging).WithBrokerTrust(messaging)
    .WithSettingsFrom("Envio:Topology", "Envio:Publisher", "Envio:Api")
    .WithEncryptionKeys()
    .WithTokenAuthority().WithDevelopmentTokens()
    .WithHttpHealthCheck("/health")
    .WithExternalHttpEndpoints();

// Development: operating the error queue from the dashboard, through the API's admin endpoints.
messaging.WithErrorQueueCommands(api);

builder.AddProject<Projects.Envio_ConsumerService>("consumer")
    .WithReplicas(builder.Configuration.GetValue("Envio:ConsumerReplicas", 1))
    .WithEnvironmentOfAppHost()
    .WithBrokerUser(messaging, BrokerRole.Consumer).WaitFor(messaging).WithBrokerTrust(messaging)
    .WaitFor(api) // healthy once it declared the names the consumer's broker user may only use
    .WithDatabase(enviodb).WaitForLoginBootstrap(enviodb) // writes as a role that may select and insert; migrates as the schema's owner
    .WithSettingsFrom("Envio:Topology", "Envio:Consumer")
    .WithEncryptionKeys()
    .WithColumnKeys() // the stored columns' own ring: the API never holds it
    .WithHttpHealthCheck("/health")
    .WithConsumingCommands(api); // Development: pause and resume from the dashboard

builder.Build().Run();
