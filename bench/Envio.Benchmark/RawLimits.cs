using System.Diagnostics;
using Envio.Contracts.Security;
using Npgsql;
using NpgsqlTypes;
using RabbitMQ.Client;

namespace Envio.Benchmark;

/// <summary>What the broker and the database can do with nothing of Envio in between: the ceilings Envio is compared to.</summary>
internal static class RawLimits
{
    /// <summary>Publishes with confirms to a quorum queue, 256 in flight; returns messages per second. The bodies are encrypted, as Envio's are.</summary>
    public static async Task<double> PublishAsync(IConnection broker, string queue, int n, KeyRing keys, CancellationToken ct)
    {
        await using var setup = await broker.CreateChannelAsync(cancellationToken: ct);
        await setup.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum" }, cancellationToken: ct);
        // An exchange of the same name, not the default exchange: Envio's broker user may use envio.orders.* only.
        await setup.ExchangeDeclareAsync(queue, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: ct);
        await setup.QueueBindAsync(queue, queue, queue, cancellationToken: ct);
        var messages = Enumerable.Range(0, n).Select(i => BenchOrders.Message(BenchOrders.Create(i, DateTimeOffset.UtcNow), keys)).ToList();

        var clock = Stopwatch.StartNew();
        await PublishAllAsync(broker, queue, queue, messages, ct);
        return n / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Publishes with confirms, 256 unconfirmed at a time (the client's own limiter fails, not waits, beyond its bound).</summary>
    public static async Task PublishAllAsync(
        IConnection broker, string exchange, string routingKey, IReadOnlyList<(BasicProperties Properties, byte[] Body)> messages, CancellationToken ct)
    {
        await using var channel = await broker.CreateChannelAsync(new CreateChannelOptions(true, true, outstandingPublisherConfirmationsRateLimiter: null), ct);
        using var inFlight = new SemaphoreSlim(256);
        var confirms = new List<Task>(messages.Count);
        foreach (var (properties, body) in messages)
        {
            await inFlight.WaitAsync(ct);
            confirms.Add(PublishAsync(channel, inFlight, exchange, routingKey, properties, body, ct));
        }
        await Task.WhenAll(confirms);
    }

    private static async Task PublishAsync(IChannel channel, SemaphoreSlim inFlight, string exchange, string routingKey, BasicProperties properties, byte[] body, CancellationToken ct)
    {
        try
        {
            await channel.BasicPublishAsync(exchange, routingKey, true, properties, body, ct);
        }
        finally
        {
            inFlight.Release();
        }
    }

    /// <summary>Drains the queue with prefetch 1000 and a multiple-ack every 100 messages; returns messages per second.</summary>
    public static async Task<double> DrainAsync(IConnection broker, string queue, int n, CancellationToken ct)
    {
        await using var channel = await broker.CreateChannelAsync(cancellationToken: ct);
        await channel.BasicQosAsync(0, 1000, false, ct);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = 0;
        var consumer = new RabbitMQ.Client.Events.AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivery) =>
        {
            if (++received % 100 == 0 || received == n)
            {
                await channel.BasicAckAsync(delivery.DeliveryTag, multiple: true);
            }
            if (received == n)
            {
                done.TrySetResult();
            }
        };
        var clock = Stopwatch.StartNew();
        await channel.BasicConsumeAsync(queue, autoAck: false, consumer, ct);
        await done.Task.WaitAsync(ct);
        var rate = n / clock.Elapsed.TotalSeconds;
        await channel.QueueDeleteAsync(queue, cancellationToken: ct);
        await channel.ExchangeDeleteAsync(queue, cancellationToken: ct);
        return rate;
    }

    /// <summary>
    /// Binary COPY of orders and items in transactions of 500 orders into tables of their own; orders per second. The
    /// rows have Envio's shape, the customer's email and document encrypted, so the limit includes that cost.
    /// </summary>
    public static async Task<double> CopyAsync(NpgsqlDataSource database, int n, KeyRing keys, CancellationToken ct)
    {
        await using (var create = database.CreateCommand("""
            DROP TABLE IF EXISTS raw_order_items; DROP TABLE IF EXISTS raw_orders;
            CREATE TABLE raw_orders (LIKE orders INCLUDING ALL);
            CREATE TABLE raw_order_items (LIKE order_items INCLUDING ALL);
            """))
        {
            await create.ExecuteNonQueryAsync(ct);
        }
        var orders = Enumerable.Range(0, n).Select(i => BenchOrders.Create(i, DateTimeOffset.UtcNow)).ToList();
        var clock = Stopwatch.StartNew();
        foreach (var chunk in orders.Chunk(500))
        {
            await using var connection = await database.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            await using (var writer = await connection.BeginBinaryImportAsync(
                "COPY raw_orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, received_by) FROM STDIN (FORMAT BINARY)", ct))
            {
                foreach (var o in chunk)
                {
                    await writer.WriteRowAsync(ct, o.OrderId, o.Customer.Name,
                        SensitiveColumns.Seal(keys, o.OrderId, SensitiveColumns.CustomerEmail, o.Customer.Email),
                        SensitiveColumns.Seal(keys, o.OrderId, SensitiveColumns.CustomerDocument, o.Customer.Document),
                        o.Currency, o.Total, o.CreatedAt.UtcDateTime, "bench");
                }
                await writer.CompleteAsync(ct);
            }
            await using (var writer = await connection.BeginBinaryImportAsync(
                "COPY raw_order_items (order_id, line_no, sku, quantity, unit_price) FROM STDIN (FORMAT BINARY)", ct))
            {
                foreach (var o in chunk)
                {
                    for (var line = 0; line < o.Items.Count; line++)
                    {
                        await writer.WriteRowAsync(ct, o.OrderId, line + 1, o.Items[line].Sku, o.Items[line].Quantity, o.Items[line].UnitPrice);
                    }
                }
                await writer.CompleteAsync(ct);
            }
            await transaction.CommitAsync(ct);
        }
        var rate = n / clock.Elapsed.TotalSeconds;
        await using (var drop = database.CreateCommand("DROP TABLE raw_order_items; DROP TABLE raw_orders;"))
        {
            await drop.ExecuteNonQueryAsync(ct);
        }
        return rate;
    }
}
