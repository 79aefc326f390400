using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Envio.Contracts;
using Envio.Tests.Support;
using static Envio.Tests.Security.HostileInputChecks;

namespace Envio.Tests.Security;

/// <summary>
/// The fuzzer for every registered type (orders also have their own, longer run in <see cref="FuzzTests"/>): bodies
/// made from the type's samples by the same mutations, against its endpoints on the shared stack. Only the statuses a
/// client can act on, every refusal a problem document, every accepted body valid by the type's rules and stored, and
/// no refused body's id stored or in the type's error queue.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed partial class DataObjectFuzzTests(EnvioStack stack)
{
    private const int Bodies = 1_500;
    private static readonly HttpStatusCode[] Allowed =
        [HttpStatusCode.Accepted, HttpStatusCode.BadRequest, HttpStatusCode.RequestEntityTooLarge, HttpStatusCode.UnsupportedMediaType];

    [GeneratedRegex("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")]
    private static partial Regex GuidPattern();

    [Theory(Timeout = 300_000)]
    [MemberData(nameof(Samples.TypeNames), MemberType = typeof(Samples))]
    public Task Mutated_bodies_get_no_5xx_and_publish_nothing_refused(string type) =>
        Samples.TypeNamed(type).Accept(new Run(stack));

    private sealed class Run(EnvioStack stack) : IDataObjectTypeVisitor<Task>
    {
        public async Task Visit<T>(DataObjectType<T> type) where T : class
        {
            var ct = TestContext.Current.CancellationToken;
            var seed = 20_261_207 + type.Name.Length;
            var caseVariant = char.ToUpperInvariant(type.Members[^1].JsonName[0]) + type.Members[^1].JsonName[1..];
            var fuzz = new FuzzBodies(seed, type.Plural, type.Id.JsonName, caseVariant,
                index => JsonSerializer.SerializeToNode(Samples.Create(type, 900_000 + index), type.Json)!);
            var bodies = Enumerable.Range(0, Bodies).Select(fuzz.Next).ToArray();
            var answers = new (HttpStatusCode Status, string Text)[Bodies];
            using var client = Client(stack, TestTokens.Create(client: "fuzzer", scopes: [type.SendScope]));

            await Parallel.ForEachAsync(Enumerable.Range(0, Bodies), new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = ct },
                async (i, token) =>
                {
                    using var content = new ByteArrayContent(bodies[i].Body);
                    content.Headers.ContentType = MediaTypeHeaderValue.Parse(bodies[i].ContentType);
                    using var response = await client.PostAsync(new Uri(bodies[i].Path, UriKind.Relative), content, token);
                    answers[i] = (response.StatusCode, await response.Content.ReadAsStringAsync(token));
                });

            var statuses = answers.GroupBy(a => a.Status).ToDictionary(g => g.Key, g => g.Count());
            TestContext.Current.TestOutputHelper?.WriteLine($"{type.Name} fuzz seed {seed}: " +
                string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{(int)s.Key}: {s.Value}")));
            var unexpected = Enumerable.Range(0, Bodies).Where(i => !Allowed.Contains(answers[i].Status)).ToList();
            Assert.True(unexpected.Count == 0, $"{type.Name}, seed {seed}: {unexpected.Count} answers outside {string.Join('/', Allowed.Select(s => (int)s))}, e.g.\n" +
                string.Join("\n", unexpected.Take(5).Select(i => $"{(int)answers[i].Status} for [{bodies[i].Mutations}] {bodies[i].Path} → {answers[i].Text}")));
            Assert.True(statuses.GetValueOrDefault(HttpStatusCode.Accepted) > 20, "the fuzz barely produced valid bodies");
            Assert.True(statuses.GetValueOrDefault(HttpStatusCode.BadRequest) > 100, "the fuzz barely produced invalid bodies");
            Assert.All(Enumerable.Range(0, Bodies).Where(i => answers[i].Status != HttpStatusCode.Accepted),
                i => Assert.Equal((int)answers[i].Status, JsonDocument.Parse(answers[i].Text).RootElement.GetProperty("status").GetInt32()));

            var accepted = new HashSet<Guid>();
            foreach (var i in Enumerable.Range(0, Bodies).Where(i => answers[i].Status == HttpStatusCode.Accepted))
            {
                var ids = JsonDocument.Parse(answers[i].Text).RootElement.GetProperty(type.IdsName).EnumerateArray().Select(e => e.GetGuid()).ToList();
                var values = bodies[i].Path.EndsWith("/batch", StringComparison.Ordinal)
                    ? JsonSerializer.Deserialize(bodies[i].Body, type.List)!
                    : [type.Deserialize(bodies[i].Body)!];
                Assert.Equal(values.Count, ids.Count);
                for (var k = 0; k < values.Count; k++)
                {
                    // What the API published: the object with its id and creation time filled in where the body had none.
                    type.FillIn(values[k], DateTimeOffset.UtcNow);
                    var errors = new Dictionary<string, List<string>>();
                    type.Validate(values[k], "", errors);
                    Assert.True(errors.Count == 0, $"accepted [{bodies[i].Mutations}] breaks the rules: " +
                        string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")));
                    accepted.Add(ids[k]);
                }
            }
            var refused = Enumerable.Range(0, Bodies).Where(i => answers[i].Status != HttpStatusCode.Accepted)
                .SelectMany(i => GuidPattern().Matches(Encoding.UTF8.GetString(bodies[i].Body)).Select(m => Guid.Parse(m.Value)))
                .Where(id => !accepted.Contains(id))
                .ToHashSet();

            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            long stored;
            while ((stored = await StoredObjects.CountAsync(stack.Orders, type.Table, type.Id.ColumnName, accepted)) < accepted.Count && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250, ct);
            }
            Assert.Equal(accepted.Count, stored);
            await stack.WaitUntilQueuesDrainedAsync(ct);
            Assert.Equal(0, await StoredObjects.CountAsync(stack.Orders, type.Table, type.Id.ColumnName, refused));
            using var errorQueue = await stack.Api.GetAsync(new Uri($"/admin/errors?type={type.Name}&limit=500", UriKind.Relative), ct);
            var page = await errorQueue.Content.ReadAsStringAsync(ct);
            Assert.Equal(HttpStatusCode.OK, errorQueue.StatusCode);
            Assert.DoesNotContain(GuidPattern().Matches(page).Select(m => Guid.Parse(m.Value)), refused.Contains);
            using var anonymous = Client(stack, null);
            Assert.Equal("Healthy", await anonymous.GetStringAsync(new Uri("/health", UriKind.Relative), ct));
        }
    }
}
