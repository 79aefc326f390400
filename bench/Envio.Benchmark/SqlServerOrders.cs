using Microsoft.Data.SqlClient;

namespace Envio.Benchmark;

/// <summary>
/// The benchmark's reads of Envio's rows on SQL Server, by order id. T-SQL has no array parameter (PostgreSQL's
/// <c>= ANY($1)</c>), so the ids go as literal lists of 500, one query each; they are GUIDs the benchmark made itself,
/// so the literals cannot carry anything else.
/// </summary>
internal sealed class SqlServerOrders(string connectionString)
{
    private const int ChunkSize = 500;

    /// <summary>Empties the consumer's tables, items first (their foreign key): each round starts as the first did.</summary>
    public async Task EmptyAsync(CancellationToken ct)
    {
        await using var connection = new SqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var empty = new SqlCommand("TRUNCATE TABLE dbo.order_items; DELETE FROM dbo.orders;", connection);
        await empty.ExecuteNonQueryAsync(ct);
    }

    public async Task<long> CountAsync(Guid[] ids, CancellationToken ct) =>
        (await PerChunkAsync("COUNT_BIG(*)", ids, row => row.GetInt64(0), ct)).Sum();

    /// <summary>From the first to the last commit of the rows: <c>received_at</c> is the inserting statement's time.</summary>
    public async Task<TimeSpan> CommitSpanAsync(Guid[] ids, CancellationToken ct)
    {
        var spans = await PerChunkAsync<(DateTimeOffset? First, DateTimeOffset? Last)>("MIN(received_at), MAX(received_at)", ids,
            row => row.IsDBNull(0) ? default : (row.GetDateTimeOffset(0), row.GetDateTimeOffset(1)), ct);
        var span = spans.Max(s => s.Last) - spans.Min(s => s.First); // null: none of the rows is there
        return span > TimeSpan.Zero ? span.Value : TimeSpan.FromMilliseconds(1);
    }

    private async Task<List<T>> PerChunkAsync<T>(string select, Guid[] ids, Func<SqlDataReader, T> read, CancellationToken ct)
    {
        var rows = new List<T>();
        await using var connection = new SqlConnection(connectionString);
        await connection.OpenAsync(ct);
        foreach (var chunk in ids.Chunk(ChunkSize))
        {
            await using var query = new SqlCommand(
                $"SELECT {select} FROM dbo.orders WHERE order_id IN ({string.Join(", ", chunk.Select(id => $"'{id}'"))})", connection);
            await using var reader = await query.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            rows.Add(read(reader));
        }
        return rows;
    }
}
