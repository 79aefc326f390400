using System.Diagnostics;
using Envio.ApiService.Messaging;
using Envio.ConsumerService.Messaging;
using Envio.Tests.Support;
using OpenTelemetry;
using OpenTelemetry.Trace;
using RabbitMQ.Client;

namespace Envio.Tests.Observability;

/// <summary>
/// One trace per order: the request's span, the publish, the delivery and the batch's process and insert spans share
/// a trace, carried by the traceparent header through the real broker; a batch links to every message in it.
/// Captured with OpenTelemetry's in-memory exporter around the real publisher and consumer.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class TraceTests(EnvioStack stack)
{
    // Stands for the API's HTTP server span (ASP.NET Core's instrumentation makes it in the service).
    private static readonly ActivitySource Requests = new("Envio.Tests.Requests");

    private readonly List<Activity> _spans = [];

    private TracerProvider Tracing() => Sdk.CreateTracerProviderBuilder()
        .AddSource(Requests.Name, PublisherTelemetry.Name, ConsumerTelemetry.Name,
            RabbitMQActivitySource.PublisherSourceName, RabbitMQActivitySource.SubscriberSourceName)
        .AddInMemoryExporter(_spans)
        .Build()!;

    [Fact]
    public async Task The_request_the_publish_the_delivery_and_the_batch_insert_are_one_trace()
    {
        var ct = TestContext.Current.CancellationToken;
        using var tracing = Tracing();
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync();
        var order = SampleOrders.Create(70_001);

        ActivityContext request;
        using (var server = Requests.StartActivity("POST /api/orders", ActivityKind.Server))
        {
            request = server!.Context;
            await pipeline.Publisher.PublishAsync([InProcessPipeline.Message(order)], ct);
        }
        await pipeline.StartConsumerAsync();
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));

        var trace = request.TraceId;
        var insert = await WaitForSpanAsync(s => s.DisplayName == "insert orders" && s.TraceId == trace);
        var process = Single(s => s.DisplayName == $"process {pipeline.Topology.Queue}" && s.TraceId == trace);
        var send = Single(s => s.DisplayName == $"send {pipeline.Topology.Exchange}" && s.TraceId == trace);
        var publish = Single(s => s.Source.Name == RabbitMQActivitySource.PublisherSourceName && s.TraceId == trace);
        var deliver = Single(s => s.Source.Name == RabbitMQActivitySource.SubscriberSourceName && s.TraceId == trace);

        // request → send → publish ⇢ (broker, traceparent) ⇢ deliver → process → insert
        Assert.Equal(request.SpanId, send.ParentSpanId);
        Assert.Equal(send.SpanId, publish.ParentSpanId);
        Assert.Equal(publish.SpanId, deliver.ParentSpanId);
        Assert.Equal(deliver.SpanId, process.ParentSpanId);
        Assert.Equal(process.SpanId, insert.ParentSpanId);
        Assert.Contains(process.Links, link => link.Context.TraceId == trace && link.Context.SpanId == deliver.SpanId);
        Assert.Equal(1, process.GetTagItem("messaging.batch.message_count"));
    }

    [Fact]
    public async Task A_batch_of_orders_from_two_requests_links_to_both_traces()
    {
        var ct = TestContext.Current.CancellationToken;
        using var tracing = Tracing();
        await using var pipeline = new InProcessPipeline(stack);
        await pipeline.StartPublisherAsync();
        var orders = new[] { SampleOrders.Create(70_101), SampleOrders.Create(70_102) };

        var requests = new List<ActivityTraceId>();
        foreach (var order in orders)
        {
            using var server = Requests.StartActivity("POST /api/orders", ActivityKind.Server);
            requests.Add(server!.TraceId);
            await pipeline.Publisher.PublishAsync([InProcessPipeline.Message(order)], ct);
        }
        // Both wait in the queue before the consumer starts, and its window is wide: they form one batch.
        await pipeline.StartConsumerAsync(batchWindow: TimeSpan.FromSeconds(1));
        Assert.Equal(2, await StoredOrders.WaitForAsync(stack.Database, orders.Select(o => o.OrderId).ToList(), TimeSpan.FromSeconds(60)));

        var process = await WaitForSpanAsync(s => s.DisplayName == $"process {pipeline.Topology.Queue}" && requests.Contains(s.TraceId));
        Assert.Equal(2, process.GetTagItem("messaging.batch.message_count"));
        Assert.All(requests, trace => Assert.Contains(process.Links, link => link.Context.TraceId == trace));
    }

    private Activity[] Snapshot()
    {
        lock (_spans)
        {
            return [.. _spans];
        }
    }

    private Activity Single(Func<Activity, bool> match) => Assert.Single(Snapshot(), s => match(s));

    private async Task<Activity> WaitForSpanAsync(Func<Activity, bool> match)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (Snapshot().FirstOrDefault(match) is { } span)
            {
                return span;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("No such span was exported.");
    }
}
