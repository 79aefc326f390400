using System.Net;
using System.Net.Http.Json;
using System.Text;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Tests.Support;
using Npgsql;
using RabbitMQ.Client;

namespace Envio.Tests.Security;

/// <summary>
/// The proof of encryption at rest: an order carrying a unique canary in its email and document goes through the
/// whole stack, and then neither the broker's files nor the database's files hold the canary (UTF-8 or UTF-16), while
/// reading the row with the key ring gives it back. Controls show the search would see plaintext: the broker's files
/// hold a raw plaintext canary published with confirms and the encrypted message's id (so the message reached the
/// disk), and the database's files hold the order's unencrypted customer name.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class CanaryTests(EnvioStack stack)
{
    [Fact]
    public async Task An_orders_email_and_document_are_on_no_disk_in_clear_and_read_back_through_the_key_ring()
    {
        var ct = TestContext.Current.CancellationToken;
        var canary = $"canary{Guid.NewGuid():N}";
        var name = $"Named {Guid.NewGuid():N}";
        var order = SampleOrders.Create(63_001) with
        {
            Customer = new Customer { Name = name, Email = $"{canary}@example.com", Document = canary.ToUpperInvariant() },
        };

        using (var response = await stack.Api.PostAsJsonAsync("/api/orders", order, WireFormat.Options, ct))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode); // confirmed by the broker: on its disk
        }
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Database, [order.OrderId], TimeSpan.FromSeconds(60)));

        var control = $"control{Guid.NewGuid():N}";
        await PublishPlaintextControlAsync(control, ct);
        await CheckpointAsync(ct);

        var (broker, database) = DataDirectories();
        Assert.True(Contains(broker, control), "control: a plaintext body published with confirms is not found in the broker's files (the search is blind)");
        Assert.True(Contains(broker, order.OrderId.ToString()), "control: the encrypted message's id is not found in the broker's files (it never reached the disk)");
        Assert.True(Contains(database, name), "control: the order's unencrypted name is not found in the database's files (the search is blind)");
        foreach (var secret in new[] { canary, canary.ToUpperInvariant() })
        {
            Assert.False(Contains(broker, secret), $"the broker's files hold '{secret}' in clear");
            Assert.False(Contains(database, secret), $"the database's files hold '{secret}' in clear");
        }

        var stored = (await StoredOrders.ReadAsync(stack.Database, stack.ColumnKeys, [order.OrderId]))[order.OrderId].Order;
        Assert.Equal(order.Customer, stored.Customer); // what is on disk is the canary, encrypted
        // …by the consumer's own column ring: the API's (message) ring, all the internet-facing service holds, cannot open it.
        var refused = await Assert.ThrowsAsync<Envio.Contracts.Security.UndecryptableException>(
            () => StoredOrders.ReadAsync(stack.Database, stack.Keys, [order.OrderId]));
        Assert.Contains($"encrypted with key '{stack.ColumnKeys.CurrentKeyId}', which is not in the key ring", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_the_consumer_is_given_the_keys_of_the_stored_columns()
    {
        var ct = TestContext.Current.CancellationToken;
        var api = await ResourceSettings.OfAsync(stack.App, "api", ct);
        var consumer = await ResourceSettings.OfAsync(stack.App, "consumer", ct);

        Assert.DoesNotContain(api, s => s.Key.StartsWith(Envio.Contracts.Security.KeyRing.ColumnsSectionName, StringComparison.Ordinal));
        Assert.Contains(consumer, s => s.Key == $"{Envio.Contracts.Security.KeyRing.ColumnsSectionName}:Keys:{stack.ColumnKeys.CurrentKeyId}");
        var messageKeys = api.Where(s => s.Key.StartsWith("Envio:Encryption:Keys:", StringComparison.Ordinal)).Select(s => s.Value).ToHashSet();
        var columnKeys = consumer.Where(s => s.Key.StartsWith($"{Envio.Contracts.Security.KeyRing.ColumnsSectionName}:Keys:", StringComparison.Ordinal)).Select(s => s.Value);
        Assert.NotEmpty(messageKeys);
        Assert.DoesNotContain(columnKeys, messageKeys.Contains); // not the same key under another name
    }

    /// <summary>A plaintext message in a quorum queue of its own (the consumer never sees it), confirmed: on disk.</summary>
    private async Task PublishPlaintextControlAsync(string control, CancellationToken ct)
    {
        // Under envio.orders.* and through an exchange of its own: the broker user may use nothing else.
        var queue = $"envio.orders.canary-control.{Guid.NewGuid():N}";
        await using var channel = await stack.Broker.CreateChannelAsync(new CreateChannelOptions(true, true), ct);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum" }, cancellationToken: ct);
        await channel.ExchangeDeclareAsync(queue, ExchangeType.Direct, durable: false, autoDelete: true, cancellationToken: ct);
        await channel.QueueBindAsync(queue, queue, queue, cancellationToken: ct);
        await channel.BasicPublishAsync(queue, queue, mandatory: true, new BasicProperties { Persistent = true },
            Encoding.UTF8.GetBytes($"{{\"email\":\"{control}@example.com\"}}"), ct);
    }

    /// <summary>Makes PostgreSQL write every dirty page to the data files (the WAL already holds the commit).</summary>
    private async Task CheckpointAsync(CancellationToken ct)
    {
        await using var server = NpgsqlDataSource.Create(stack.ServerConnectionString + ";Database=postgres");
        await using var checkpoint = server.CreateCommand("CHECKPOINT");
        await checkpoint.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The stack's <c>run-*/messaging</c> and <c>run-*/postgres/data</c> (see LocalProcessWorkspace).</summary>
    private (string Broker, string Database) DataDirectories()
    {
        var run = Assert.Single(Directory.GetDirectories(stack.DataRoot, "run-*"));
        var broker = Path.Combine(run, "messaging");
        var database = Path.Combine(run, "postgres", "data");
        Assert.True(Directory.Exists(broker), broker);
        Assert.True(File.Exists(Path.Combine(database, "PG_VERSION")), database);
        return (broker, database);
    }

    /// <summary>
    /// Whether any regular file under <paramref name="directory"/> holds the text, in UTF-8 or UTF-16. A file that
    /// cannot be read is tried again; one that still cannot (and still exists) fails the test: a search that skips it
    /// (a WAL segment being written, say) would prove nothing about it.
    /// </summary>
    private static bool Contains(string directory, string text)
    {
        byte[][] needles = [Encoding.UTF8.GetBytes(text), Encoding.Unicode.GetBytes(text), Encoding.BigEndianUnicode.GetBytes(text)];
        foreach (var file in Directory.EnumerateFiles(directory, "*", new EnumerationOptions { RecurseSubdirectories = true }))
        {
            if (Read(file) is { } content && needles.Any(needle => content.AsSpan().IndexOf(needle) >= 0))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The file's bytes; null for what is not a regular file or was removed meanwhile (WAL segments are recycled).</summary>
    private static byte[]? Read(string file)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (!stream.CanSeek)
                {
                    return null; // a socket or a pipe, not a file
                }
                // Read to the end, whatever the length was when opened (a file being appended to grows meanwhile).
                using var content = new MemoryStream();
                stream.CopyTo(content);
                return content.ToArray();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (!File.Exists(file))
                {
                    return null;
                }
                Assert.True(attempt < 5, $"{file} could not be read ({e.Message}): the search would be blind to it");
                Thread.Sleep(100 * attempt);
            }
        }
    }
}
