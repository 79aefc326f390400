using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Envio.Messaging;
using Envio.Contracts.Security;
using Envio.Tests.Observability;
using Envio.Tests.Support;
using RabbitMQ.Client;

namespace Envio.Tests.Compatibility;

/// <summary>
/// What a deployed order depends on, compared with snapshots recorded on the order-only code (see
/// <see cref="Snapshots"/>): the OpenAPI document, the answers to a fixed corpus of bodies, a published message on the
/// wire, the broker's queues and exchanges, the database catalog and the migration journal. Black-box on purpose: the
/// tests reach the system through HTTP, AMQP and SQL only, and write orders as JSON text, so they run unchanged on
/// code whose types were renamed. Where new object types may add to what is there (paths, schemas, queues, tables,
/// migrations), the comparison allows additions and nothing else.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed partial class OrderCompatibilityTests(EnvioStack stack)
{
    private const string Orders = "/api/orders";
    private const string Batch = "/api/orders/batch";
    private const int MiB = 1024 * 1024;

    private static readonly string[] OptionalOpenApiMembers = ["security", "tags"];

    /// <summary>The broker's virtual host for Envio (what the AppHost creates and the broker user is confined to).</summary>
    private const string VirtualHost = "envio";

    /// <summary>The order of the README, with an id of its own per use (the shared stack stores the valid ones).</summary>
    private const string OrderJson = """
        {"orderId":"00000000-0000-0000-0000-000000000000","customer":{"name":"Ana Souza","email":"ana.souza@example.com","document":"123.456.789-09"},"currency":"BRL","items":[{"sku":"BOOK-001","quantity":2,"unitPrice":39.90},{"sku":"PEN-042","quantity":3,"unitPrice":4.50}],"total":93.30,"createdAt":"2026-11-27T10:15:00Z"}
        """;

    /// <summary>A fixed order id, one per use: UUIDv7-shaped, distinct from any id another test makes.</summary>
    private static string Id(int n) => $"0193a6a0-7b1c-7cc2-9d51-c0a9{n:x8}";

    private static JsonObject Order(int id, Action<JsonObject>? change = null)
    {
        var order = JsonNode.Parse(OrderJson)!.AsObject();
        order["orderId"] = Id(id);
        change?.Invoke(order);
        return order;
    }

    private static string Json(JsonNode node) => node.ToJsonString(Snapshots.Compact);

    private static string Array(params JsonNode[] orders) => "[" + string.Join(",", orders.Select(Json)) + "]";

    private static JsonNode Items(string item, int count) => JsonNode.Parse($"[{string.Join(',', Enumerable.Repeat(item, count))}]")!;

    private static AuthenticationHeaderValue Token(params string[] scopes) => new("Bearer", TestTokens.Create(scopes: scopes));

    // ---------------------------------------------------------------------------------------------------- OpenAPI

    /// <summary>
    /// Everything of the document a client generated its code from: every path and operation, every component schema,
    /// the security schemes and the OpenAPI version. New paths and schemas may be added (and the additions listed below);
    /// info.description may change.
    /// </summary>
    [Fact]
    public async Task The_OpenAPI_document_keeps_every_order_path_and_schema()
    {
        var ct = TestContext.Current.CancellationToken;
        using var client = new HttpClient { BaseAddress = stack.Api.BaseAddress };

        using var response = await client.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative), ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = JsonNode.Parse(await response.Content.ReadAsStringAsync(ct))!.AsObject();
        var compared = new JsonObject
        {
            ["openapi"] = document["openapi"]?.DeepClone(),
            ["info"] = new JsonObject { ["title"] = document["info"]?["title"]?.DeepClone() },
            ["paths"] = document["paths"]?.DeepClone(),
            ["components"] = new JsonObject
            {
                ["schemas"] = document["components"]?["schemas"]?.DeepClone(),
                ["securitySchemes"] = document["components"]?["securitySchemes"]?.DeepClone(),
            },
        };
        // The document's other top-level members, as far as it has them (no top-level security today).
        foreach (var member in OptionalOpenApiMembers.Where(document.ContainsKey))
        {
            compared[member] = document[member]!.DeepClone();
        }
        // The subset rule: new paths (and operations on a path), new schemas and new tags are additions; every
        // operation and schema the snapshot holds must be there and deep-equal; the security schemes equal. Besides,
        // what data objects of any type added to the order's operations, each an addition a client's code keeps
        // working with: the admin API's optional ?type= (a parameter, and its 400 for a type that is not registered),
        // a type's own scope beside envio.send (another security requirement, either one grants the call), and the
        // limits the rules always enforced, now declared on the record ([MaxLength]: maxLength in the schema).
        // Recorded on purpose: pause and resume answer 200 with the state and the consumers' confirmations, not 204.
        Snapshots.Match("openapi", compared, JsonComparison.AllowAt(Additions.Members,
            "paths", "paths/*", "components/schemas", "tags",
            "paths/*/*", "paths/*/*/parameters", "paths/*/*/responses", "paths/*/*/security",
            "components/schemas/*/properties/*"));
    }

    // ---------------------------------------------------------------------------------------------------- Answers

    private sealed record Call(string Path, string Body, string ContentType = "application/json", AuthenticationHeaderValue? Token = null, bool Anonymous = false);

    /// <summary>The corpus: what clients send today, valid and not, and exactly what they get back.</summary>
    private static IEnumerable<(string Name, Call Call)> Corpus()
    {
        yield return ("order with orderId and createdAt", new(Orders, Json(Order(1))));
        yield return ("order without orderId and createdAt", new(Orders, Json(Order(2, o =>
        {
            o.Remove("orderId");
            o.Remove("createdAt");
        }))));
        yield return ("batch of two orders", new(Batch, Array(Order(3), Order(4))));

        yield return ("order with every field wrong", new(Orders, Json(Order(10, o =>
        {
            o["customer"] = new JsonObject { ["name"] = "", ["email"] = "ana.souza.example.com", ["document"] = "123\u0007456" };
            o["currency"] = "brl";
            o["items"] = new JsonArray();
            o["total"] = -1;
        }))));
        yield return ("order with over-long customer fields and every item field wrong", new(Orders, Json(Order(11, o =>
        {
            o["customer"] = new JsonObject { ["name"] = new string('n', 201), ["email"] = "ana.souza@example", ["document"] = new string('1', 51) };
            o["currency"] = "XXX";
            o["items"] = JsonNode.Parse("""
                [{"sku":"","quantity":0,"unitPrice":-1},
                 {"sku":"A\u0000B","quantity":1000001,"unitPrice":1.00001},
                 {"sku":"BOOK-001","quantity":2,"unitPrice":39.90}]
                """);
            // Not reported: with an item invalid there is no sum to compare the total with.
            o["total"] = 80;
        }))));
        yield return ("batch with an invalid order at index 1", new(Batch, Array(Order(20), Order(21, o => o["customer"]!["email"] = "no-at-sign"))));
        yield return ("unknown property", new(Orders, Json(Order(30, o => o["discount"] = 10))));
        yield return ("unknown nested property", new(Orders, Json(Order(31, o => o["customer"]!["isAdmin"] = true))));
        yield return ("duplicate property", new(Orders, Json(Order(32)).Replace("\"total\":93.30", "\"total\":93.30,\"total\":93.30", StringComparison.Ordinal)));
        yield return ("malformed JSON", new(Orders, Json(Order(33))[..^7]));
        yield return ("empty body", new(Orders, ""));
        yield return ("word where a number belongs", new(Orders, Json(Order(34, o => o["items"]![0]!["quantity"] = "two"))));
        // The web defaults read numbers from strings: a quoted number is accepted as the number.
        yield return ("number in quotes where a number belongs", new(Orders, Json(Order(44, o => o["items"]![0]!["quantity"] = "2"))));
        yield return ("null body", new(Orders, "null"));
        yield return ("array sent to the single endpoint", new(Orders, Array(Order(35))));
        yield return ("object sent to the batch endpoint", new(Batch, Json(Order(36))));
        yield return ("empty batch", new(Batch, "[]"));
        yield return ("batch of 1001 orders", new(Batch, Array([.. Enumerable.Repeat(Order(37), 1_001)])));
        yield return ("order with 1001 items", new(Orders, Json(Order(38, o => o["items"] = Items("""{"sku":"A","quantity":1,"unitPrice":0}""", 1_001)))));
        yield return ("total with 5 decimal places", new(Orders, Json(Order(39, o => o["total"] = JsonNode.Parse("93.30001")))));
        yield return ("quantity 0", new(Orders, Json(Order(40, o => o["items"]![0]!["quantity"] = 0))));
        yield return ("quantity 1000001", new(Orders, Json(Order(41, o => o["items"]![0]!["quantity"] = 1_000_001))));
        yield return ("currency XXX", new(Orders, Json(Order(42, o => o["currency"] = "XXX"))));
        yield return ("missing customer", new(Orders, Json(Order(43, o => o.Remove("customer")))));
        yield return ("wrong total", new(Orders, Json(Order(45, o => o["total"] = 90))));

        // One byte over the single endpoint's 1 MiB: the order itself, padded with whitespace (still valid JSON).
        var order = Json(Order(50));
        yield return ("body over 1 MiB", new(Orders, order.Insert(1, new string(' ', MiB + 1 - Encoding.UTF8.GetByteCount(order)))));
        yield return ("text/plain body", new(Orders, Json(Order(51)), ContentType: "text/plain"));
        yield return ("no token", new(Orders, Json(Order(52)), Anonymous: true));
        yield return ("token without envio.send", new(Orders, Json(Order(53)), Token: Token(TestTokens.AdminScope)));
    }

    [Fact]
    public async Task The_answers_to_the_corpus_of_bodies_are_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        var answers = new JsonObject();
        foreach (var (name, call) in Corpus())
        {
            // A client of its own per call, without retries: every answer is the API's first.
            using var client = new HttpClient { BaseAddress = stack.Api.BaseAddress };
            client.DefaultRequestHeaders.Authorization = call.Anonymous ? null : call.Token ?? Token(TestTokens.SendScope);
            using var content = new StringContent(call.Body, Encoding.UTF8);
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(call.ContentType);
            using var response = await client.PostAsync(new Uri(call.Path, UriKind.Relative), content, ct);
            answers[name] = await Answers.OfAsync(response, call.Body, ct, $"POST {call.Path}");
        }
        Snapshots.Match("responses", answers);
    }

    /// <summary>408: a body that arrives slower than Envio:Api:BodyReadTimeout allows.</summary>
    [Fact]
    public async Task The_answer_to_a_body_slower_than_the_read_timeout_is_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        await WithPrivateTopologyAsync(async topology =>
        {
            await using var api = await InProcessApi.ForAsync(stack, topology, ct, [Setting("Envio:Api:BodyReadTimeout", "00:00:01")]);
            // Without the factory's redirect handler: it reads the whole request body first (to send it again on a
            // redirect), so the API would only ever see a complete body.
            using var client = api.CreateClient(new() { AllowAutoRedirect = false, HandleCookies = false });
            client.DefaultRequestHeaders.Authorization = TestTokens.Bearer();
            var body = Json(Order(60));
            using var content = new TrickledContent(Encoding.UTF8.GetBytes(body), TimeSpan.FromSeconds(3));
            content.Headers.ContentType = new("application/json");

            using var response = await client.PostAsync(new Uri(Orders, UriKind.Relative), content, ct);

            Snapshots.Match("response-408-body-read-timeout", await Answers.OfAsync(response, body, ct));
        });
    }

    /// <summary>429: a second request right after the first, with a bucket of one request a second.</summary>
    [Fact]
    public async Task The_answer_to_a_client_over_its_rate_limit_is_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        await WithPrivateTopologyAsync(async topology =>
        {
            await using var api = await InProcessApi.ForAsync(stack, topology, ct,
                [Setting("Envio:Api:RateLimit:Burst", "1"), Setting("Envio:Api:RateLimit:RequestsPerSecond", "1")]);
            using var client = api.Client();
            var body = Json(Order(61));
            // The first request takes the bucket's only token; the second, sent at once, finds none (on a machine slow
            // enough for a second to pass in between, the next pair tries again).
            for (var attempt = 0; attempt < 5; attempt++)
            {
                using var first = await PostJsonAsync(client, Orders, body, ct);
                using var second = await PostJsonAsync(client, Orders, body, ct);
                if (second.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    Snapshots.Match("response-429-rate-limit", await Answers.OfAsync(second, body, ct));
                    return;
                }
                await Task.Delay(1_100, ct);
            }
            Assert.Fail("Two requests in a row never met the rate limit of one a second.");
        });
    }

    /// <summary>503 from the publisher: the broker nacks every publish to a work queue bounded at 0 messages.</summary>
    [Fact]
    public async Task The_answer_when_the_broker_refuses_the_order_is_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        await WithPrivateTopologyAsync(async topology =>
        {
            // x-max-length 0 with x-overflow reject-publish (quorum queues): the queue refuses whatever arrives.
            await using var api = await InProcessApi.ForAsync(stack, topology, ct, [Setting("Envio:Topology:MaxLength", "0")]);
            using var client = api.Client();
            var body = Json(Order(62));
            // A quorum queue may notice its bound a moment late: the same order (same id, as a client retries) again.
            for (var attempt = 0; attempt < 5; attempt++)
            {
                using var response = await PostJsonAsync(client, Orders, body, ct);
                if (response.StatusCode != HttpStatusCode.Accepted)
                {
                    Snapshots.Match("response-503-broker-refused", await Answers.OfAsync(response, body, ct));
                    return;
                }
            }
            Assert.Fail("The queue bounded at 0 accepted five publishes.");
        });
    }

    /// <summary>503 when no broker answers at all: a closed port, one connection attempt.</summary>
    [Fact]
    public async Task The_answer_when_the_broker_is_unreachable_is_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        using var closed = new ClosedLoopbackPort();
        await WithPrivateTopologyAsync(async topology =>
        {
            await using var api = await InProcessApi.ForAsync(stack, topology, ct,
            [
                Setting("ConnectionStrings:messaging", $"amqps://envio:unused@127.0.0.1:{closed.Port}/envio"),
                // One attempt, not Aspire's five with back-off: the request meets the closed port at once.
                Setting("Aspire:RabbitMQ:Client:MaxConnectRetryCount", "0"),
            ]);
            using var client = api.Client();
            var body = Json(Order(63));

            using var response = await PostJsonAsync(client, Orders, body, ct);

            Snapshots.Match("response-503-broker-unreachable", await Answers.OfAsync(response, body, ct));
        });
    }

    // ---------------------------------------------------------------------------------------------------- The wire

    /// <summary>
    /// An accepted order as the broker holds it, taken from a queue nobody reads: every AMQP property and header a
    /// consumer (of this version or the next) reads, and the body decrypted with the key ring, as JSON. The body opens
    /// with the envelope read back from the properties, and not with one that lacks the client or names another
    /// type: the associated data binds the message id, the type and the client.
    /// </summary>
    [Fact]
    public async Task A_published_order_is_unchanged_on_the_wire()
    {
        var ct = TestContext.Current.CancellationToken;
        await WithPrivateTopologyAsync(async topology =>
        {
            await using var api = await InProcessApi.ForAsync(stack, topology, ct);
            using var client = api.Client();
            const string correlation = "compat-correlation-0001";
            var body = Json(Order(70));
            using (var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Orders, UriKind.Relative)))
            {
                request.Headers.Add("X-Correlation-Id", correlation);
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                using var response = await client.SendAsync(request, ct);
                Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
            }

            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            var message = await channel.BasicGetAsync(topology.Queue, autoAck: true, ct);
            Assert.NotNull(message);
            var properties = message.BasicProperties;
            var envelope = Envelope.FromProperties(properties, out var problem);
            Assert.True(envelope is not null, problem);
            var plaintext = EncryptedBody.Open(stack.Keys, envelope, message.Body.Span);

            Snapshots.Match("wire-message", new JsonObject
            {
                ["exchange"] = message.Exchange == topology.Exchange ? "<the topology's Exchange>" : message.Exchange,
                ["routingKey"] = message.RoutingKey,
                ["redelivered"] = message.Redelivered,
                ["properties"] = Properties(properties),
                ["headers"] = Headers(properties),
                ["body"] = new JsonObject
                {
                    // The sealed value's format version (a consumer reads the format from it).
                    ["firstByte"] = message.Body.Span[0],
                    ["opensWithTheEnvelopeOfItsProperties"] = true,
                    ["opensWithoutTheClientId"] = Opens(envelope with { ClientId = null }, message.Body),
                    ["opensUnderAnotherType"] = Opens(envelope with { Type = envelope.Type + ".other" }, message.Body),
                    ["opensUnderAnotherMessageId"] = Opens(envelope with { MessageId = Guid.Parse(Id(71)) }, message.Body),
                    ["json"] = JsonNode.Parse(plaintext),
                },
            });
        });
    }

    private bool Opens(Envelope envelope, ReadOnlyMemory<byte> body)
    {
        try
        {
            EncryptedBody.Open(stack.Keys, envelope, body.Span);
            return true;
        }
        // The key ring's own exception derives from it: the body did not open under this associated data.
        catch (System.Security.Cryptography.CryptographicException)
        {
            return false;
        }
    }

    private static JsonObject Properties(IReadOnlyBasicProperties p)
    {
        var created = HeaderText(p, Envelope.CreatedAtHeader);
        return new JsonObject
        {
            ["contentType"] = p.IsContentTypePresent() ? p.ContentType : null,
            ["contentEncoding"] = p.IsContentEncodingPresent() ? p.ContentEncoding : null,
            ["deliveryMode"] = p.IsDeliveryModePresent() ? (int)p.DeliveryMode : null,
            ["persistent"] = p.Persistent,
            ["priority"] = p.IsPriorityPresent() ? p.Priority : null,
            ["correlationId"] = p.IsCorrelationIdPresent() ? p.CorrelationId : null,
            ["replyTo"] = p.IsReplyToPresent() ? p.ReplyTo : null,
            ["expiration"] = p.IsExpirationPresent() ? p.Expiration : null,
            ["messageId"] = p.IsMessageIdPresent() ? p.MessageId : null,
            // The time the API accepted the order: it changes, so what is kept is that it is the created-at header's
            // instant in whole seconds.
            ["timestamp"] = !p.IsTimestampPresent() ? null
                : created is not null && DateTimeOffset.TryParse(created, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var at)
                    && at.ToUnixTimeSeconds() == p.Timestamp.UnixTime ? "<envio-created-at in Unix seconds>"
                : $"<{p.Timestamp.UnixTime}, not envio-created-at in Unix seconds>",
            ["type"] = p.IsTypePresent() ? p.Type : null,
            ["userId"] = p.IsUserIdPresent() ? p.UserId : null,
            ["appId"] = p.IsAppIdPresent() ? p.AppId : null,
            ["clusterId"] = p.IsClusterIdPresent() ? p.ClusterId : null,
        };
    }

    /// <summary>
    /// Every header, with its value, except the volatile ones: the creation time keeps its format (each digit as 9,
    /// after a check that it is an ISO 8601 instant) and the trace context only its presence.
    /// </summary>
    private static JsonObject Headers(IReadOnlyBasicProperties properties)
    {
        var headers = new JsonObject();
        foreach (var (name, value) in (properties.Headers ?? new Dictionary<string, object?>()).OrderBy(h => h.Key, StringComparer.Ordinal))
        {
            headers[name] = name switch
            {
                Envelope.CreatedAtHeader => IsoInstant().IsMatch(HeaderText(properties, name) ?? "")
                    ? Digits().Replace(HeaderText(properties, name)!, "9")
                    : $"<not ISO 8601: {HeaderText(properties, name)}>",
                "traceparent" or "tracestate" => "<volatile>",
                // The client library's publish sequence number on its channel: which publish of the channel it was.
                "x-dotnet-pub-seq-no" => "<volatile>",
                _ => value switch
                {
                    byte[] bytes => $"{Encoding.UTF8.GetString(bytes)}",
                    int number => number,
                    long number => number,
                    bool flag => flag,
                    null => null,
                    _ => $"<{value.GetType().Name}: {Convert.ToString(value, CultureInfo.InvariantCulture)}>",
                },
            };
        }
        return headers;
    }

    private static string? HeaderText(IReadOnlyBasicProperties properties, string name) =>
        properties.Headers?.TryGetValue(name, out var value) == true && value is byte[] bytes ? Encoding.UTF8.GetString(bytes) : null;

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")]
    private static partial Regex IsoInstant();

    [GeneratedRegex(@"\d")]
    private static partial Regex Digits();

    // ---------------------------------------------------------------------------------------------------- The broker

    /// <summary>
    /// Every queue, exchange and binding of Envio's on the shared stack's broker, with the arguments a redeclaration
    /// must match (quorum, delivery limit, dead-lettering, TTLs): a service declaring a queue with other arguments is
    /// refused by the broker. Per-process control queues, the broker's own amq.* exchanges and what tests create are
    /// left out; new queues and exchanges may be added.
    /// </summary>
    [Fact]
    public async Task The_queues_exchanges_and_bindings_are_unchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        var queues = new JsonObject();
        foreach (var queue in await ListAsync("list_queues", ["name", "durable", "auto_delete", "type", "arguments"], ct))
        {
            queues[queue["name"]!.GetValue<string>()] = new JsonObject
            {
                ["durable"] = queue["durable"]?.DeepClone(),
                ["auto_delete"] = queue["auto_delete"]?.DeepClone(),
                ["type"] = queue["type"]?.DeepClone(),
                ["arguments"] = Arguments(queue["arguments"]),
            };
        }
        var exchanges = new JsonObject();
        foreach (var exchange in await ListAsync("list_exchanges", ["name", "type", "durable", "auto_delete", "internal", "arguments"], ct))
        {
            exchanges[exchange["name"]!.GetValue<string>()] = new JsonObject
            {
                ["type"] = exchange["type"]?.DeepClone(),
                ["durable"] = exchange["durable"]?.DeepClone(),
                ["auto_delete"] = exchange["auto_delete"]?.DeepClone(),
                ["internal"] = exchange["internal"]?.DeepClone(),
                ["arguments"] = Arguments(exchange["arguments"]),
            };
        }
        // The default exchange's implicit binding of every queue is the broker's, not Envio's.
        var bindings = new JsonArray([.. (await ListAsync("list_bindings",
                ["source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"], ct))
            .Where(b => b["source_name"]!.GetValue<string>().Length > 0 && !Excluded(b["destination_name"]!.GetValue<string>()))
            .Select(b => (JsonNode)new JsonObject
            {
                ["source"] = b["source_name"]?.DeepClone(),
                ["destination"] = b["destination_name"]?.DeepClone(),
                ["destinationKind"] = b["destination_kind"]?.DeepClone(),
                ["routingKey"] = b["routing_key"]?.DeepClone(),
                ["arguments"] = Arguments(b["arguments"]),
            })
            .OrderBy(b => Json(b), StringComparer.Ordinal)]);

        Snapshots.Match("broker-topology", new JsonObject { ["queues"] = queues, ["exchanges"] = exchanges, ["bindings"] = bindings },
            JsonComparison.AllowAt(Additions.Members, "queues", "exchanges", "bindings"));
    }

    /// <summary>The rows of a <c>rabbitmqctl list_*</c> in Envio's virtual host, Envio's own only, by name.</summary>
    private async Task<List<JsonObject>> ListAsync(string command, string[] columns, CancellationToken ct)
    {
        var output = await RabbitMQCtl.RunAsync(stack.App.Nodes()[0], ct, [command, "-p", VirtualHost, .. columns, "--formatter", "json"]);
        var rows = JsonNode.Parse(output[output.IndexOf('[', StringComparison.Ordinal)..])!.AsArray().Select(r => r!.AsObject());
        return [.. rows.Where(r => command == "list_bindings" || !Excluded(r["name"]!.GetValue<string>()))
            .OrderBy(r => r[columns[0]]!.GetValue<string>(), StringComparer.Ordinal)];
    }

    /// <summary>
    /// Not Envio's deployed topology: the default and amq.* exchanges (the broker's), and names that carry a GUID
    /// or a test's marker (each consumer's control queue <c>envio.orders.control.&lt;machine&gt;.&lt;guid&gt;</c>,
    /// tests' private topologies).
    /// </summary>
    private static bool Excluded(string name) =>
        name.Length == 0 || name.StartsWith("amq.", StringComparison.Ordinal) || PerProcessName().IsMatch(name);

    [GeneratedRegex(@"(^|\.)([0-9a-f]{32}|test|compat-[0-9a-f]+)(\.|$)")]
    private static partial Regex PerProcessName();

    /// <summary>Arguments as an object by name, in name order (the CLI's order is not a promise).</summary>
    private static JsonObject Arguments(JsonNode? arguments)
    {
        var byName = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal);
        switch (arguments)
        {
            case JsonObject members:
                foreach (var (name, value) in members)
                {
                    byName[name] = value?.DeepClone();
                }
                break;
            case JsonArray pairs:
                foreach (var pair in pairs.OfType<JsonArray>())
                {
                    byName[pair[0]!.GetValue<string>()] = pair[^1]?.DeepClone();
                }
                break;
        }
        return new JsonObject(byName);
    }

    // ---------------------------------------------------------------------------------------------------- The database

    /// <summary>PostgreSQL's tables, columns, constraints and indexes; new tables (and indexes) may be added.</summary>
    [Fact]
    public async Task The_PostgreSQL_catalog_is_unchanged()
    {
        Snapshots.Match("catalog-postgres", await DatabaseCatalog.PostgresAsync(stack.Database),
            JsonComparison.AllowAt(Additions.Members, "tables", "tables/*/indexes"));
    }

    /// <summary>The migrations PostgreSQL's journal lists: the snapshot's, in order, and perhaps newer ones after them.</summary>
    [Fact]
    public async Task The_PostgreSQL_migration_journal_begins_with_the_snapshot()
    {
        Snapshots.Match("journal-postgres",
            await DatabaseCatalog.JournalAsync(stack.Database, "SELECT scriptname FROM schemaversions ORDER BY schemaversionsid"),
            JsonComparison.AllowAt(Additions.Appended, ""));
    }

    // ---------------------------------------------------------------------------------------------------- Helpers

    private static KeyValuePair<string, string?> Setting(string key, string value) => KeyValuePair.Create<string, string?>(key, value);

    private static Task<HttpResponseMessage> PostJsonAsync(HttpClient client, string path, string json, CancellationToken ct) =>
        client.PostAsync(new Uri(path, UriKind.Relative), new StringContent(json, Encoding.UTF8, "application/json"), ct);

    /// <summary>
    /// Runs <paramref name="test"/> with a topology of its own, all of its names under <c>envio.orders.compat-…</c>
    /// (within the broker user's permissions), and deletes afterwards every queue and exchange under that name,
    /// whatever the API under test declared there.
    /// </summary>
    private async Task WithPrivateTopologyAsync(Func<TopologyOptions, Task> test)
    {
        var name = $"envio.orders.compat-{Guid.NewGuid():N}"[..28];
        var topology = new TopologyOptions
        {
            Exchange = name,
            Queue = name,
            ErrorExchange = $"{name}.error",
            ErrorQueue = $"{name}.error",
            RetryExchange = $"{name}.retry",
            ControlExchange = $"{name}.control",
        };
        try
        {
            await test(topology);
        }
        finally
        {
            await DeleteUnderAsync(name);
        }
    }

    private async Task DeleteUnderAsync(string name)
    {
        await using var channel = await stack.Broker.CreateChannelAsync();
        foreach (var (command, delete) in new (string, Func<string, Task>)[]
        {
            ("list_queues", queue => channel.QueueDeleteAsync(queue)),
            ("list_exchanges", exchange => channel.ExchangeDeleteAsync(exchange)),
        })
        {
            var output = await RabbitMQCtl.RunAsync(stack.App.Nodes()[0], CancellationToken.None, command, "-p", VirtualHost, "name", "--formatter", "json");
            foreach (var row in JsonNode.Parse(output[output.IndexOf('[', StringComparison.Ordinal)..])!.AsArray())
            {
                var found = row!["name"]!.GetValue<string>();
                if (found == name || found.StartsWith(name + ".", StringComparison.Ordinal))
                {
                    await delete(found);
                }
            }
        }
    }

    /// <summary>A body of unknown length that sends its first bytes, then nothing for <paramref name="pause"/>, then the rest.</summary>
    private sealed class TrickledContent(byte[] bytes, TimeSpan pause) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(bytes.AsMemory(0, 8));
            await stream.FlushAsync();
            await Task.Delay(pause);
            await stream.WriteAsync(bytes.AsMemory(8));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}

/// <summary>The same snapshots' database part on SQL Server: a stack of its own storing into the TDS server (Babelfish in CI).</summary>
[Collection(CatalogTests.Name)]
public sealed class SqlServerOrderCompatibilityTests(SqlServerStack stack) : IClassFixture<SqlServerStack>
{
    /// <summary>
    /// SQL Server's tables, columns, constraints and indexes, and the table types the batch insert sends; new tables,
    /// types (and indexes) may be added.
    /// </summary>
    [Fact]
    public async Task The_SQL_Server_catalog_is_unchanged()
    {
        stack.SkipWhenUnavailable();
        Snapshots.Match("catalog-sqlserver", await DatabaseCatalog.SqlServerAsync(stack.Orders),
            JsonComparison.AllowAt(Additions.Members, "tables", "tables/*/indexes", "types"));
    }

    [Fact]
    public async Task The_SQL_Server_migration_journal_begins_with_the_snapshot()
    {
        stack.SkipWhenUnavailable();
        Snapshots.Match("journal-sqlserver",
            await DatabaseCatalog.JournalAsync(stack.Orders, "SELECT ScriptName FROM dbo.SchemaVersions ORDER BY Id"),
            JsonComparison.AllowAt(Additions.Appended, ""));
    }
}
