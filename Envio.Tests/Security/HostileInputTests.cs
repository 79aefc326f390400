using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using static Envio.Tests.Security.HostileInputChecks;

namespace Envio.Tests.Security;

/// <summary>
/// Bodies an attacker or a broken client sends: each gets a 4xx problem (400, 413 or 415) naming what is wrong,
/// and nothing is published (no order row, no message in any queue). The decisions: unknown and duplicate properties are refused (a typo must not drop
/// data silently); numbers must fit the contract's types; strings are bounded and free of control characters.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class HostileInputTests(EnvioStack stack)
{
    private const int MiB = 1024 * 1024;
    private const long BatchLimit = Envio.ApiService.Security.ApiOptions.DefaultMaxBatchBodyBytes;

    private sealed record Case(string Path, string Body, HttpStatusCode Status, string? ErrorKey = null, string ContentType = "application/json", bool Chunked = false);

    public static TheoryData<string> Cases() => [.. CaseFor.Keys];

    private static readonly Dictionary<string, Func<Order, Case>> CaseFor = new()
    {
        ["malformed JSON"] = o => Single(Json(o)[..^7], HttpStatusCode.BadRequest),
        ["not JSON at all"] = o => Single("orderId=1&total=2", HttpStatusCode.BadRequest),
        ["empty body"] = o => Single("", HttpStatusCode.BadRequest),
        ["null"] = o => Single("null", HttpStatusCode.BadRequest),
        ["an array for one order"] = o => Single($"[{Json(o)}]", HttpStatusCode.BadRequest),
        ["text/plain"] = o => Single(Json(o), HttpStatusCode.UnsupportedMediaType, contentType: "text/plain"),
        ["form content"] = o => Single(Json(o), HttpStatusCode.UnsupportedMediaType, contentType: "application/x-www-form-urlencoded"),
        ["XML"] = o => Single("<order/>", HttpStatusCode.UnsupportedMediaType, contentType: "application/xml"),
        ["one byte over 1 MiB"] = o => Single(Padded(Json(o), MiB + 1), HttpStatusCode.RequestEntityTooLarge),
        ["over 1 MiB, chunked"] = o => Single(Padded(Json(o), MiB + 1), HttpStatusCode.RequestEntityTooLarge) with { Chunked = true },
        ["deep nesting"] = o => Single(Json(o).Replace("\"customer\":", "\"customer\":" + new string('[', 5_000), StringComparison.Ordinal), HttpStatusCode.BadRequest),
        ["200,000 items"] = o => Single(Json(o, n => n["items"] = Repeat("{}", 200_000)), HttpStatusCode.BadRequest, "items"),
        ["1,001 items"] = o => Single(Json(o, n => n["items"] = Repeat("""{"sku":"A","quantity":1,"unitPrice":0}""", 1_001)), HttpStatusCode.BadRequest, "items"),
        ["name of 201 characters"] = o => Single(Json(o, n => n["customer"]!["name"] = new string('n', 201)), HttpStatusCode.BadRequest, "customer.name"),
        ["name of 900 KB"] = o => Single(Json(o, n => n["customer"]!["name"] = new string('n', 900_000)), HttpStatusCode.BadRequest, "customer.name"),
        ["sku of 65 characters"] = o => Single(Json(o, n => n["items"]![0]!["sku"] = new string('s', 65)), HttpStatusCode.BadRequest, "items[0].sku"),
        ["bell in the name"] = o => Single(Json(o, n => n["customer"]!["name"] = "Ana\u0007Souza"), HttpStatusCode.BadRequest, "customer.name"),
        ["NUL in the sku"] = o => Single(Json(o, n => n["items"]![0]!["sku"] = "A\0B"), HttpStatusCode.BadRequest, "items[0].sku"),
        ["newline in the document"] = o => Single(Json(o, n => n["customer"]!["document"] = "123\n456"), HttpStatusCode.BadRequest, "customer.document"),
        ["lone surrogate"] = o => Single(Json(o).Replace("\"name\":\"", "\"name\":\"\\ud800", StringComparison.Ordinal), HttpStatusCode.BadRequest),
        ["quantity beyond int"] = o => Single(Json(o, n => n["items"]![0]!["quantity"] = JsonNode.Parse("2147483648")), HttpStatusCode.BadRequest),
        ["quantity beyond the contract"] = o => Single(Json(o, n => n["items"]![0]!["quantity"] = 1_000_001), HttpStatusCode.BadRequest, "items[0].quantity"),
        ["price beyond decimal"] = o => Single(Json(o, n => n["items"]![0]!["unitPrice"] = JsonNode.Parse("1e300")), HttpStatusCode.BadRequest),
        ["price beyond the columns"] = o => Single(Json(o, n => n["items"]![0]!["unitPrice"] = JsonNode.Parse("1000000000000000")), HttpStatusCode.BadRequest, "items[0].unitPrice"),
        ["negative total"] = o => Single(Json(o, n => n["total"] = -1), HttpStatusCode.BadRequest, "total"),
        ["five decimal places"] = o => Single(Json(o, n => n["total"] = JsonNode.Parse("1.00001")), HttpStatusCode.BadRequest, "total"),
        ["quantity as a string of words"] = o => Single(Json(o, n => n["items"]![0]!["quantity"] = "many"), HttpStatusCode.BadRequest),
        ["items as an object"] = o => Single(Json(o, n => n["items"] = new JsonObject()), HttpStatusCode.BadRequest),
        ["date out of range"] = o => Single(Json(o, n => n["createdAt"] = "10000-01-01T00:00:00Z"), HttpStatusCode.BadRequest),
        ["duplicate property"] = o => Single(Json(o).Replace("\"total\":", $"\"orderId\":\"{Guid.NewGuid()}\",\"total\":", StringComparison.Ordinal), HttpStatusCode.BadRequest),
        ["duplicate property in another case"] = o => Single(Json(o).Replace("\"total\":", "\"Total\":1,\"total\":", StringComparison.Ordinal), HttpStatusCode.BadRequest),
        ["unknown property"] = o => Single(Json(o, n => n["discount"] = 10), HttpStatusCode.BadRequest),
        ["unknown nested property"] = o => Single(Json(o, n => n["customer"]!["isAdmin"] = true), HttpStatusCode.BadRequest),
        ["batch of 1,001 orders"] = o => Batch(Enumerable.Repeat(Json(o), 1_001), HttpStatusCode.BadRequest, "$"),
        ["batch of 500,000 empty objects"] = o => Batch(Enumerable.Repeat("{}", 500_000), HttpStatusCode.BadRequest, "$"),
        ["empty batch"] = o => Batch([], HttpStatusCode.BadRequest, "$"),
        ["batch one byte over its limit"] = o => new Case("/api/orders/batch", Padded($"[{Json(o)}]", (int)BatchLimit + 1), HttpStatusCode.RequestEntityTooLarge),
        ["batch as text/plain"] = o => Batch([Json(o)], HttpStatusCode.UnsupportedMediaType) with { ContentType = "text/plain" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Hostile_bodies_get_a_4xx_problem_and_nothing_is_published(string name)
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(700_000 + name.Length);
        var hostile = CaseFor[name](order);
        var before = await StackTotals.TakeAsync(stack, ct);

        using var response = await SendAsync(hostile, ct);

        var problem = await AssertProblemAsync(response, hostile.Status, ct);
        if (hostile.ErrorKey is { } key)
        {
            Assert.Contains(key, problem.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        }
        // By what was published, not only by the order's id: some of these bodies hold no id (empty, null, XML, empty
        // objects), and one holds a second.
        await AssertNothingPublishedAsync(stack, before, [order.OrderId], ct);
    }

    [Fact]
    public async Task A_batch_of_exactly_its_limit_over_a_mebibyte_is_accepted()
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(710_000);

        using var response = await SendAsync(new Case("/api/orders/batch", Padded($"[{Json(order)}]", (int)BatchLimit), HttpStatusCode.Accepted), ct);

        Assert.Equal([order.OrderId], await AcceptedIdsAsync(response, ct));
    }

    // The body reader's pooled buffers end at 1 MiB, the single order's limit: a body of exactly that many bytes is
    // read to its end in a buffer past the pool's, and accepted.
    [Fact]
    public async Task An_order_of_exactly_its_limit_is_accepted()
    {
        var ct = TestContext.Current.CancellationToken;
        var order = SampleOrders.Create(711_000);

        using var response = await SendAsync(new Case("/api/orders", Padded(Json(order), MiB), HttpStatusCode.Accepted), ct);

        Assert.Equal([order.OrderId], await AcceptedIdsAsync(response, ct));
    }

    [Fact]
    public async Task Millions_of_empty_objects_within_the_size_limit_are_refused_without_becoming_millions_of_objects()
    {
        var ct = TestContext.Current.CancellationToken;
        // 2 MiB of "{}," is 700,000 orders to a deserializer: tens of megabytes before any validator counts them.
        var body = "[" + string.Join(',', Enumerable.Repeat("{}", ((int)BatchLimit - 2) / 3)) + "]";
        var api = await ResourceProcesses.ApiProcessAsync(stack.App, ct);
        var before = ResourceProcesses.ResidentMegabytes(api);
        Assert.True(before > 0, $"the API's memory (/proc/{api}/status) could not be read: the check below would prove nothing");
        var peak = before;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, ResourceProcesses.ResidentMegabytes(api));
                await Task.Delay(10, CancellationToken.None);
            }
        }, CancellationToken.None);

        using (var response = await SendAsync(new Case("/api/orders/batch", body, HttpStatusCode.BadRequest), ct))
        {
            await sampling.CancelAsync();
            await sampler;
            var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest, ct);
            Assert.Contains("$", problem.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        }
        Assert.True(peak - before < 250, $"the API grew by {peak - before:0} MB (from {before:0} MB) for one refused body");
    }

    private async Task<HttpResponseMessage> SendAsync(Case hostile, CancellationToken ct)
    {
        using var client = Client(stack, TestTokens.Create(client: "hostile", scopes: [TestTokens.SendScope]));
        var bytes = Encoding.UTF8.GetBytes(hostile.Body);
        using HttpContent content = hostile.Chunked ? new ChunkedContent(bytes) : new ByteArrayContent(bytes);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(hostile.ContentType);
        return await client.PostAsync(new Uri(hostile.Path, UriKind.Relative), content, ct);
    }

    private static Case Single(string body, HttpStatusCode status, string? errorKey = null, string contentType = "application/json") =>
        new("/api/orders", body, status, errorKey, contentType);

    private static Case Batch(IEnumerable<string> orders, HttpStatusCode status, string? errorKey = null) =>
        new("/api/orders/batch", $"[{string.Join(',', orders)}]", status, errorKey);

    private static string Json(Order order) => JsonSerializer.Serialize(order, WireFormat.Options);

    private static string Json(Order order, Action<JsonObject> change)
    {
        var node = JsonSerializer.SerializeToNode(order, WireFormat.Options)!.AsObject();
        change(node);
        return node.ToJsonString();
    }

    private static JsonNode Repeat(string element, int count) => JsonNode.Parse($"[{string.Join(',', Enumerable.Repeat(element, count))}]")!;

    /// <summary>The same JSON, made exactly <paramref name="length"/> bytes long with whitespace (still valid JSON).</summary>
    private static string Padded(string json, int length) => json.Insert(1, new string(' ', length - Encoding.UTF8.GetByteCount(json)));

    /// <summary>A body of unknown length: sent chunked, so only the server's own count can stop it.</summary>
    private sealed class ChunkedContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
