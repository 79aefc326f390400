using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.Hosting;

// Adds common Aspire services: service discovery, resilience, health checks, and OpenTelemetry.
// This project should be referenced by each service project in your solution.
public static class Extensions
{
    private const string HealthEndpointPath = "/health";
    private const string AlivenessEndpointPath = "/alive";

    // Activity source and meter names (ServiceDefaults references neither the services nor the client library).
    private const string EnvioPublisher = "Envio.Publisher";
    private const string EnvioConsumer = "Envio.Consumer";
    private const string RabbitMqPublisher = "RabbitMQ.Client.Publisher";
    private const string RabbitMqSubscriber = "RabbitMQ.Client.Subscriber";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        // NAME_FILE=/run/secrets/... gives NAME that file's content (deploy/compose passes every secret that way).
        builder.Configuration.AddSecretFiles();

        builder.ConfigureOpenTelemetry();

        builder.AddDefaultHealthChecks();

        builder.Services.AddServiceDiscovery();

        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            // Turn on resilience by default
            http.AddStandardResilienceHandler();

            // Turn on service discovery by default
            http.AddServiceDiscovery();
        });

        return builder;
    }

    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics =>
            {
                metrics.AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddRuntimeInstrumentation()
                    // Envio's own: the publisher's in the API, the consumer's (and envio.queue.depth) in the consumer.
                    .AddMeter(EnvioPublisher, EnvioConsumer);
            })
            .WithTracing(tracing =>
            {
                tracing.AddSource(builder.Environment.ApplicationName)
                    // One trace per order: the RabbitMQ client writes the traceparent header only while its publisher
                    // source is listened to (Aspire.RabbitMQ.Client registers both as well; naming them here keeps the
                    // trace whole even where that registration is turned off), and Envio's batch spans link to it.
                    .AddSource(RabbitMqPublisher, RabbitMqSubscriber, EnvioPublisher, EnvioConsumer)
                    .AddAspNetCoreInstrumentation(tracing =>
                        // Exclude health check requests from tracing
                        tracing.Filter = context =>
                            !context.Request.Path.StartsWithSegments(HealthEndpointPath)
                            && !context.Request.Path.StartsWithSegments(AlivenessEndpointPath)
                    )
                    .AddHttpClientInstrumentation();
            });

        builder.AddOpenTelemetryExporters();

        return builder;
    }

    private static TBuilder AddOpenTelemetryExporters<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var useOtlpExporter = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);

        if (useOtlpExporter)
        {
            builder.Services.AddOpenTelemetry().UseOtlpExporter();
        }

        return builder;
    }

    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            // Add a default liveness check to ensure app is responsive
            .AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        builder.Services.CacheHealthCheckResults(); // /health is anonymous: a result serves every call for 2 s

        return builder;
    }

    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        // In every environment, unlike the Aspire template (Development only): compose's health checks and Kubernetes'
        // probes call them in production. What made the template careful is handled: they answer the status word only,
        // results are reused for 2 s (CachedHealthChecks), and the API limits anonymous requests per address.
        // Readiness: every registered check, the broker and the database included.
        app.MapHealthChecks(HealthEndpointPath);

        // Liveness: only the checks tagged "live" must pass for the app to be considered alive.
        app.MapHealthChecks(AlivenessEndpointPath, new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains("live")
        });

        return app;
    }
}
