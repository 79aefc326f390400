using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Envio.ApiService.Messaging;
using Envio.ConsumerService.Messaging;
using Envio.Messaging;
using Envio.Tests.Support;
using OpenTelemetry;
using OpenTelemetry.Trace;
using RabbitMQ.Client;

namespace Envio.Tests.Observability;

/// <summary>
/// One trace per order: the API's HTTP server span, the publish, the delivery and the batch's process and insert spans
/// share a trace, carried by the traceparent header through the real broker; a batch links to every message in it.
/// Captured with OpenTelemetry's in-memory exporter around the real API (hosted in the test process) and the real
/// consumer.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class TraceTests(EnvioStack stack)
{
    /// <summary>ASP.NET Core's own source: its hosting layer makes each request's server span there.</summary>
    private const string AspNetCore = "Microsoft.AspNetCore";

    private readonly List<Activity> _spans = [];

    private TracerProvider Tracing() => Sdk.CreateTracerProviderBuilder()
        .AddSource(AspNetCore, PublisherTelemetry.Name, ConsumerTelemetry.Name,
            RabbitMQActivitySource.PublisherSourceName, RabbitMQActivitySource.SubscriberSourceName)
        .AddInMemoryExporter(_spans)
        .Build()!;

    [Fact]
    public async Task The_request_the_publish_the_delivery_and_the_batch_insert_are_one_trace()
    {
        var ct = TestContext.Current.CancellationToken;
        using var tracing = Tracing();
        await using var pipeline = new InProcessPipeline(stack);
        await using var api = await InProcessApi.ForAsync(stack, pipeline.Topology, ct);
        using var client = api.Client();
        var order = SampleOrders.Create(70_001);

        using (var response = await client.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }
        await pipeline.StartConsumerAsync();
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));

        // The API's server span for the POST, and the publisher's span over its publishes and confirms (the private
        // exchange names this test's only one).
        var request = await WaitForSpanAsync(IsOrderRequest);
        var send = Single(s => s.DisplayName == $"send {pipeline.Topology.Exchange}");
        Assert.Equal("POST", request.GetTagItem("http.request.method"));
        // request → send → publish ⇢ (broker, traceparent) ⇢ deliver → process → insert
        Assert.Equal(request.SpanId, send.ParentSpanId);

        var trace = request.TraceId;
        var insert = await WaitForSpanAsync(s => s.DisplayName == "insert orders" && s.TraceId == trace);
        var process = Single(s => s.DisplayName == $"process {pipeline.Topology.Queue}" && s.TraceId == trace);
        var publish = Single(s => s.Source.Name == RabbitMQActivitySource.PublisherSourceName && s.TraceId == trace);
        var deliver = Single(s => s.Source.Name == RabbitMQActivitySource.SubscriberSourceName && s.TraceId == trace);
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
        await using var api = await InProcessApi.ForAsync(stack, pipeline.Topology, ct);
        using var client = api.Client();
        var orders = new[] { SampleOrders.Create(70_101), SampleOrders.Create(70_102) };

        foreach (var order in orders)
        {
            using var response = await client.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }
        // Both wait in the queue before the consumer starts, and its window is wide: they form one batch.
        await pipeline.StartConsumerAsync(batchWindow: TimeSpan.FromSeconds(1));
        Assert.Equal(2, await StoredOrders.WaitForAsync(stack.Database, orders.Select(o => o.OrderId).ToList(), TimeSpan.FromSeconds(60)));

        // Each request's trace: the one its server span started, and the API's send under it.
        var requests = await WaitForSpansAsync(IsOrderRequest, 2);
        var sends = Snapshot().Where(s => s.DisplayName == $"send {pipeline.Topology.Exchange}").ToList();
        Assert.Equal(requests.Select(r => r.SpanId.ToHexString()).Order(), sends.Select(s => s.ParentSpanId.ToHexString()).Order());
        Assert.Equal(2, requests.Select(r => r.TraceId).Distinct().Count());

        var process = await WaitForSpanAsync(s => s.DisplayName == $"process {pipeline.Topology.Queue}");
        Assert.Equal(2, process.GetTagItem("messaging.batch.message_count"));
        Assert.All(requests, request => Assert.Contains(process.Links, link => link.Context.TraceId == request.TraceId));
    }

    /// <summary>The server span ASP.NET Core made for a request to the order endpoint.</summary>
    private static bool IsOrderRequest(Activity span) =>
        span.Source.Name == AspNetCore && span.Kind == ActivityKind.Server && Equals(span.GetTagItem("url.path"), "/api/orders");

    private Activity[] Snapshot()
    {
        lock (_spans)
        {
            return [.. _spans];
        }
    }

    private Activity Single(Func<Activity, bool> match) => Assert.Single(Snapshot(), s => match(s));

    private async Task<Activity> WaitForSpanAsync(Func<Activity, bool> match) => (await WaitForSpansAsync(match, 1))[0];

    private async Task<List<Activity>> WaitForSpansAsync(Func<Activity, bool> match, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (Snapshot().Where(match).ToList() is { } spans && spans.Count >= count)
            {
                return spans;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"Fewer than {count} such spans were exported.");
    }
}
