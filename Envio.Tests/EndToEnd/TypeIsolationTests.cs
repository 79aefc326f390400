using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Envio.ApiService.Endpoints;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts;
using Envio.Messaging;
using Envio.Tests.Support;
using RabbitMQ.Client;

namespace Envio.Tests.EndToEnd;

/// <summary>
/// Each type of data object on its own, on the shared stack: its own scope sends it and no other type; pausing it holds
/// its work queue while every other type goes on; its error queue is listed, replayed and discarded on its own, even
/// when the same message id waits in another type's error queue.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class TypeIsolationTests(EnvioStack stack)
{
    private static readonly TimeSpan ArrivalTimeout = TimeSpan.FromSeconds(60);

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public async Task A_token_with_a_types_own_scope_sends_that_type_and_no_other(string name)
    {
        var ct = TestContext.Current.CancellationToken;
        var type = Samples.TypeNamed(name);
        using var client = stack.App.ApiClient(TestTokens.Create(client: $"only-{type.Plural}", scopes: [type.SendScope]));

        foreach (var each in DataObjectTypes.Registered)
        {
            using var response = await PostAsync(client, each, Guid.CreateVersion7(), ct);
            if (each == type)
            {
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            }
            else
            {
                Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
                Assert.Contains($"envio.send or {each.SendScope}", await response.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public async Task Pausing_one_type_holds_its_queue_while_every_other_type_is_stored(string name)
    {
        var ct = TestContext.Current.CancellationToken;
        var paused = Samples.TypeNamed(name);
        using (var pause = await stack.Api.PostAsync(new Uri($"/admin/consumers/pause?type={paused.Name}", UriKind.Relative), null, ct))
        {
            Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        }
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1), ct); // the command reaches every replica through the broker
            var sent = new Dictionary<DataObjectType, Guid>();
            foreach (var each in DataObjectTypes.Registered)
            {
                var id = Guid.CreateVersion7();
                using var response = await PostAsync(stack.Api, each, id, ct);
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                sent[each] = id;
            }

            foreach (var (each, id) in sent.Where(s => s.Key != paused))
            {
                Assert.Equal(1, await WaitForAsync(each, id, ArrivalTimeout));
            }
            Assert.Equal(0, await WaitForAsync(paused, sent[paused], TimeSpan.FromSeconds(3)));
            await using var channel = await stack.Broker.CreateChannelAsync(cancellationToken: ct);
            Assert.True((await channel.QueueDeclarePassiveAsync(stack.Topology.NamesOf(paused).Queue, ct)).MessageCount >= 1,
                "the paused type's message is not waiting in its work queue");
        }
        finally
        {
            using var resume = await stack.Api.PostAsync(new Uri($"/admin/consumers/resume?type={paused.Name}", UriKind.Relative), null, ct);
            Assert.Equal(HttpStatusCode.OK, resume.StatusCode);
        }
        await stack.WaitUntilQueuesDrainedAsync(ct);
    }

    [Fact]
    public async Task The_same_message_id_in_two_types_error_queues_is_listed_replayed_and_discarded_per_type()
    {
        var ct = TestContext.Current.CancellationToken;
        var id = Guid.CreateVersion7();
        foreach (var type in DataObjectTypes.Registered)
        {
            await DeadLetterAsync(type, id, ct);
        }

        foreach (var type in DataObjectTypes.Registered)
        {
            var listed = await ListAsync(type, ct);
            var mine = Assert.Single(listed, m => m.GetProperty("messageId").GetString() == id.ToString());
            Assert.Equal(type.WireType, mine.GetProperty("type").GetString());
        }

        // The first type's copy is replayed into its own table; every other type's is discarded, each by naming its type.
        var (first, others) = (DataObjectTypes.Registered[0], DataObjectTypes.Registered.Skip(1).ToList());
        using (var replay = await stack.Api.PostAsJsonAsync($"/admin/errors/replay?type={first.Name}", new ReplayRequest([id.ToString()]), ct))
        {
            Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        }
        Assert.Equal(1, await WaitForAsync(first, id, ArrivalTimeout));
        foreach (var type in others)
        {
            Assert.Single(await ListAsync(type, ct), m => m.GetProperty("messageId").GetString() == id.ToString());
            using var discard = await stack.Api.DeleteAsync(new Uri($"/admin/errors/{id}?type={type.Name}", UriKind.Relative), ct);
            Assert.Equal(HttpStatusCode.NoContent, discard.StatusCode);
            Assert.DoesNotContain(await ListAsync(type, ct), m => m.GetProperty("messageId").GetString() == id.ToString());
            Assert.Equal(0, await WaitForAsync(type, id, TimeSpan.Zero));
        }
        using var unknown = await stack.Api.GetAsync(new Uri("/admin/errors?type=no-such-type", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
    }

    private static async Task<HttpResponseMessage> PostAsync(HttpClient client, DataObjectType type, Guid id, CancellationToken ct)
    {
        var body = DataObjectExamples.Of(type);
        body[type.Id.JsonName] = id.ToString();
        using var content = new StringContent(body.ToJsonString(), new MediaTypeHeaderValue("application/json"));
        return await client.PostAsync(new Uri($"/api/{type.Plural}", UriKind.Relative), content, ct);
    }

    /// <summary>An example of <paramref name="type"/> under <paramref name="id"/>, dead-lettered into its error queue as the consumer does.</summary>
    private async Task DeadLetterAsync(DataObjectType type, Guid id, CancellationToken ct)
    {
        var body = DataObjectExamples.Of(type);
        body[type.Id.JsonName] = id.ToString();
        var envelope = new Envelope(id, type.WireType, type.SchemaVersion, DateTimeOffset.UtcNow, "isolation-test");
        var properties = EncryptedBody.Properties(envelope);
        properties.Headers![FailureHeaders.Reason] = "isolation test";
        await using var channel = await stack.Broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct);
        await channel.BasicPublishAsync(stack.Topology.NamesOf(type).ErrorExchange, "", mandatory: true, properties,
            EncryptedBody.Seal(stack.Keys, envelope, System.Text.Encoding.UTF8.GetBytes(body.ToJsonString())), ct);
    }

    private async Task<List<JsonElement>> ListAsync(DataObjectType type, CancellationToken ct)
    {
        using var response = await stack.Api.GetAsync(new Uri($"/admin/errors?type={type.Name}&limit=500", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return [.. json.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.Clone())];
    }

    private async Task<long> WaitForAsync(DataObjectType type, Guid id, TimeSpan timeout)
    {
        var (table, key) = (type.Table, type.Id.ColumnName);
        var deadline = DateTime.UtcNow + timeout;
        long count;
        while ((count = await StoredObjects.CountAsync(stack.Orders, table, key, [id])) < 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }
        return count;
    }
}
