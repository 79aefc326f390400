using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Messaging;
using Envio.Tests.Support;

namespace Envio.Tests.EndToEnd;

/// <summary>PostgreSQL: the shared stack.</summary>
[Collection(AppHostTests.Name)]
public sealed class PostgresDataObjectPathTests(EnvioStack stack) : DataObjectPathTests(stack);

/// <summary>SQL Server: a stack of its own, storing into the TDS server.</summary>
[Collection(AppHostTests.Name)]
public sealed class SqlServerDataObjectPathTests(SqlServerStack stack) : DataObjectPathTests(stack), IClassFixture<SqlServerStack>;

/// <summary>
/// Every registered type, from HTTP through its own queues into its own tables, on the real stack for each engine:
/// objects posted singly and in a batch are stored once each, exactly as sent; the example the API reference offers
/// is accepted as it is; an invalid object is refused whole with its errors keyed by JSON path, and never stored.
/// </summary>
public abstract class DataObjectPathTests(EnvioStack stack)
{
    private static readonly TimeSpan ArrivalTimeout = TimeSpan.FromSeconds(60);

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task Objects_posted_singly_and_in_a_batch_are_stored_once_each_exactly_as_sent(string type) =>
        Samples.TypeNamed(type).Accept(new Scenarios(stack)).StoredAsSentAsync();

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task The_example_of_the_api_reference_is_accepted_as_it_is(string type) =>
        Samples.TypeNamed(type).Accept(new Scenarios(stack)).ExampleAcceptedAsync();

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task An_invalid_object_gets_400_keyed_by_json_path_and_is_never_stored(string type) =>
        Samples.TypeNamed(type).Accept(new Scenarios(stack)).InvalidRefusedAsync();

    private interface IScenarios
    {
        Task StoredAsSentAsync();

        Task ExampleAcceptedAsync();

        Task InvalidRefusedAsync();
    }

    private sealed class Scenarios(EnvioStack stack) : IDataObjectTypeVisitor<IScenarios>
    {
        public IScenarios Visit<T>(DataObjectType<T> type) where T : class => new Scenarios<T>(stack, type);
    }

    private sealed class Scenarios<T>(EnvioStack stack, DataObjectType<T> type) : IScenarios where T : class
    {
        private static int _seed = 80_000;
        private readonly TableMap<T> _map = TestStore.Maps.For(type);
        private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

        private T Sample() => Samples.Create(type, Interlocked.Increment(ref _seed));

        public async Task StoredAsSentAsync()
        {
            stack.SkipWhenUnavailable();
            var singles = Enumerable.Range(0, 20).Select(_ => Sample()).ToList();
            var batch = Enumerable.Range(0, 200).Select(_ => Sample()).ToList();
            var correlation = $"e2e-{type.Name}-{Guid.NewGuid():N}";

            var accepted = new List<Guid>();
            foreach (var value in singles)
            {
                accepted.AddRange(await PostAcceptedAsync($"/api/{type.Plural}", type.Serialize(value), correlation));
            }
            // The batch again, whole: each id is stored once, whatever arrives twice.
            accepted.AddRange(await PostAcceptedAsync($"/api/{type.Plural}/batch", JsonSerializer.SerializeToUtf8Bytes(batch, type.List), correlation));
            await PostAcceptedAsync($"/api/{type.Plural}/batch", JsonSerializer.SerializeToUtf8Bytes(batch, type.List), correlation);

            var sent = singles.Concat(batch).ToList();
            Assert.Equal(sent.Select(type.IdOf), accepted);
            Assert.Equal(sent.Count, await WaitForAsync(accepted));
            await stack.WaitUntilQueuesDrainedAsync(_ct);
            var stored = await StoredObjects.ReadAsync(stack.Orders, _map, stack.ColumnKeys, accepted);
            var expected = StoredObjects.Expected(_map, stack.ColumnKeys, sent.Select(v => new Received<T>(v, type.IdOf(v), correlation, TestTokens.DefaultClient)));
            Assert.Equal(sent.Count, stored.Count);
            foreach (var id in accepted)
            {
                Assert.Equal(expected[id], stored[id]);
            }
        }

        public async Task ExampleAcceptedAsync()
        {
            stack.SkipWhenUnavailable();
            using var client = new HttpClient { BaseAddress = stack.Api.BaseAddress };
            using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative), _ct));
            var single = document.RootElement.GetProperty("paths").GetProperty($"/api/{type.Plural}").GetProperty("post")
                .GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("example");
            var batch = document.RootElement.GetProperty("paths").GetProperty($"/api/{type.Plural}/batch").GetProperty("post")
                .GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("example");

            // The example carries a fixed id: each run sends it under a fresh one, as a user trying it would.
            var example = JsonNode.Parse(single.GetRawText())!.AsObject();
            example[type.Id.JsonName] = Guid.CreateVersion7().ToString();
            var ids = await PostAcceptedAsync($"/api/{type.Plural}", Encoding.UTF8.GetBytes(example.ToJsonString()), "example");
            var examples = JsonNode.Parse(batch.GetRawText())!.AsArray();
            foreach (var each in examples.OfType<JsonObject>())
            {
                each[type.Id.JsonName] = Guid.CreateVersion7().ToString();
            }
            Assert.Equal(2, examples.Count);
            ids = [.. ids, .. await PostAcceptedAsync($"/api/{type.Plural}/batch", Encoding.UTF8.GetBytes(examples.ToJsonString()), "example")];
            Assert.Equal(3, await WaitForAsync(ids));
        }

        public async Task InvalidRefusedAsync()
        {
            stack.SkipWhenUnavailable();
            var valid = Sample();
            var body = JsonSerializer.SerializeToNode(valid, type.Json)!.AsObject();
            var (owner, broken, key) = FirstBoundedText(body, type.Members, "")
                ?? throw new InvalidOperationException($"{type.Name} has no bounded text to break.");
            owner[broken.JsonName] = new string('x', broken.MaxLength!.Value + 1);
            var batch = new JsonArray(JsonSerializer.SerializeToNode(Sample(), type.Json), body.DeepClone());

            using var one = await PostAsync($"/api/{type.Plural}", Encoding.UTF8.GetBytes(body.ToJsonString()), "invalid");
            using var many = await PostAsync($"/api/{type.Plural}/batch", Encoding.UTF8.GetBytes(batch.ToJsonString()), "invalid");

            Assert.Equal(HttpStatusCode.BadRequest, one.StatusCode);
            Assert.Equal("application/problem+json", one.Content.Headers.ContentType?.MediaType);
            Assert.Contains(key, await ErrorKeysAsync(one));
            Assert.Equal(HttpStatusCode.BadRequest, many.StatusCode);
            Assert.Contains($"[1].{key}", await ErrorKeysAsync(many));
            // A valid object sent after them arrives; they did not (the first of the batch neither: all or nothing).
            var marker = Sample();
            await PostAcceptedAsync($"/api/{type.Plural}", type.Serialize(marker), "invalid");
            Assert.Equal(1, await WaitForAsync([type.IdOf(marker)]));
            Assert.Equal(0, await StoredObjects.CountAsync(stack.Orders, _map.Table, _map.KeyColumn,
                [type.IdOf(valid), Guid.Parse(batch[0]![type.Id.JsonName]!.GetValue<string>())]));
        }

        /// <summary>The first text with a maximum (in the object or an object inside it), where it is, and its JSON path.</summary>
        private static (JsonObject Owner, DataObjectMember Member, string Path)? FirstBoundedText(JsonObject json, IReadOnlyList<DataObjectMember> members, string path)
        {
            foreach (var member in members)
            {
                var at = path.Length == 0 ? member.JsonName : $"{path}.{member.JsonName}";
                if (member.Kind == MemberKind.Value && member.ValueType == typeof(string) && member.MaxLength is not null && !member.IsFixedLength)
                {
                    return (json, member, at);
                }
                if (member.Kind == MemberKind.Nested && json[member.JsonName] is JsonObject nested && FirstBoundedText(nested, member.Members, at) is { } found)
                {
                    return found;
                }
            }
            return null;
        }

        private async Task<HttpResponseMessage> PostAsync(string path, byte[] body, string correlation)
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(path, UriKind.Relative)) { Content = content };
            request.Headers.Add(Envio.ApiService.Endpoints.DataObjectEndpoints.CorrelationHeader, correlation);
            return await stack.Api.SendAsync(request, _ct);
        }

        private async Task<Guid[]> PostAcceptedAsync(string path, byte[] body, string correlation)
        {
            using var response = await PostAsync(path, body, correlation);
            var text = await response.Content.ReadAsStringAsync(_ct);
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {text}");
            using var json = JsonDocument.Parse(text);
            return [.. json.RootElement.GetProperty(type.IdsName).EnumerateArray().Select(e => e.GetGuid())];
        }

        private async Task<long> WaitForAsync(IReadOnlyCollection<Guid> ids)
        {
            var deadline = DateTime.UtcNow + ArrivalTimeout;
            long count;
            while ((count = await StoredObjects.CountAsync(stack.Orders, _map.Table, _map.KeyColumn, ids)) < ids.Count && DateTime.UtcNow < deadline)
            {
                await Task.Delay(200, _ct);
            }
            return count;
        }

        private async Task<List<string>> ErrorKeysAsync(HttpResponseMessage response)
        {
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(_ct));
            return [.. json.RootElement.GetProperty("errors").EnumerateObject().Select(p => p.Name)];
        }
    }
}
