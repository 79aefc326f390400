using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Envio.Contracts.DataObjects;
using Envio.AppHost.Hosting;
using Envio.Benchmark;
using Envio.Messaging;
using Envio.Contracts.Orders;
using Envio.Contracts.Security;
using Envio.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using RabbitMQ.Client;

// dotnet run -c Release --project bench/Envio.Benchmark -- [--n 50000] [--singles 20000] [--clients 32] [--runs 3] [--quick] [--json path]
//   [--sqlserver "<connection string>"] [--skip cluster,sqlserver,mixed] [--env [api:|consumer:]NAME=VALUE ...]   (docs/performance.md)
var quick = args.Contains("--quick");
var n = Option("--n") is { } given ? int.Parse(given, CultureInfo.InvariantCulture) : quick ? 2_000 : 50_000;
var rounds = Option("--runs") is { } runCount ? int.Parse(runCount, CultureInfo.InvariantCulture) : 3;
var skip = (Option("--skip") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
var jsonPath = Option("--json") ?? Path.Combine("bench", "results.json");
var ct = CancellationToken.None;
var runs = new Runs();
var results = new List<Result>();

Console.WriteLine($"Envio benchmark: N = {n}{(quick ? " (quick)" : "")}, {rounds} runs of each phase, {Environment.ProcessorCount} cores. Starting the stack (processes)…");
var dataRoot = Path.Combine(Path.GetTempPath(), "envio-bench", Guid.NewGuid().ToString("N")[..8]);
await using var app = await StartStackAsync(dataRoot);
await using var broker = await ConnectBrokerAsync(app);
await using var database = NpgsqlDataSource.Create((await app.OwnerConnectionStringAsync(ct)) + ";Maximum Pool Size=64");
using var api = new HttpClient { BaseAddress = app.GetEndpoint("api", "http"), Timeout = TimeSpan.FromMinutes(2), DefaultRequestHeaders = { Authorization = TestTokens.Bearer() } };
var topology = new TopologyOptions();
var keys = await BenchOrders.KeysAsync(app);
var cpu = new CpuCounters(dataRoot);
var clients = Option("--clients") is { } clientCount ? int.Parse(clientCount, CultureInfo.InvariantCulture) : 32; // concurrent single POSTs
var singlesCount = Option("--singles") is { } count ? int.Parse(count, CultureInfo.InvariantCulture) : Math.Min(n, quick ? 2_000 : 20_000);

// Each round measures every phase once, raw limits first, on empty tables: a limit and what Envio achieves through it
// are measured minutes apart at most, and a slow spell of the machine shows as one run's range, not as a median.
for (var round = 1; round <= rounds; round++)
{
    Console.WriteLine($"Round {round} of {rounds}…");
    await EmptyTablesAsync();
    await Measured("raw publish", "publish", n, () => RawLimits.PublishAsync(broker, "envio.orders.bench.raw", n, keys, ct));
    await Measured("raw drain", "drain", n, () => RawLimits.DrainAsync(broker, "envio.orders.bench.raw", n, ct));
    await Measured("raw COPY", "copy", n, () => RawLimits.CopyAsync(database, n, keys, ct));

    var drain = await ConsumerDrainAsync("Envio consumer drain", app, broker, keys, CountRowsAsync, CommitSpanAsync);
    runs.Record("envio drain", n / drain.TotalSeconds);

    // Envio end to end, batch endpoint: N orders in batches of 1000 from 4 clients, until every row is committed.
    var batchOrders = Enumerable.Range(0, n).Select(i => BenchOrders.Create(1_000_000 + i, default)).ToList();
    var phaseCpu = cpu.Snapshot();
    var phaseStart = await DatabaseNowAsync();
    await Parallel.ForEachAsync(batchOrders.Chunk(1_000), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (chunk, token) =>
    {
        using var response = await api.PostAsJsonAsync("/api/orders/batch", chunk.ToList(), WireFormat.Options, token);
        response.EnsureSuccessStatusCode();
    });
    var batchElapsed = await UntilCommittedAsync(batchOrders.Select(o => o.OrderId).ToArray(), phaseStart);
    runs.Record(CpuCounters.Since(phaseCpu, cpu.Snapshot(), "Envio HTTP batch, end to end", batchElapsed, n));
    runs.Record("envio batch", n / batchElapsed.TotalSeconds);

    // Envio end to end, single POSTs from C concurrent clients.
    var singles = Enumerable.Range(0, singlesCount).Select(i => BenchOrders.Create(2_000_000 + i, default)).ToList();
    var latencies = new double[singles.Count];
    phaseCpu = cpu.Snapshot();
    phaseStart = await DatabaseNowAsync();
    var clock = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, singles.Count), new ParallelOptions { MaxDegreeOfParallelism = clients }, async (i, token) =>
    {
        var started = Stopwatch.GetTimestamp();
        using var response = await api.PostAsJsonAsync("/api/orders", singles[i], WireFormat.Options, token);
        response.EnsureSuccessStatusCode();
        latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    });
    var acceptRate = singles.Count / clock.Elapsed.TotalSeconds;
    var singlesElapsed = await UntilCommittedAsync(singles.Select(o => o.OrderId).ToArray(), phaseStart);
    runs.Record(CpuCounters.Since(phaseCpu, cpu.Snapshot(), "Envio single POSTs, end to end", singlesElapsed, singles.Count));
    runs.Record("singles committed", singles.Count / singlesElapsed.TotalSeconds);
    runs.Record("singles accepted", acceptRate);
    Array.Sort(latencies);
    runs.Record("request p50", Percentile(latencies, 0.50));
    runs.Record("request p99", Percentile(latencies, 0.99));

    // Accepted to committed at half this round's single-POST rate.
    var paced = Enumerable.Range(0, (int)Math.Min(acceptRate / 2 * (quick ? 3 : 10), 20_000)).Select(i => BenchOrders.Create(3_000_000 + i, default)).ToList();
    var interval = TimeSpan.FromSeconds(1 / (acceptRate / 2));
    var pacing = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, paced.Count), new ParallelOptions { MaxDegreeOfParallelism = clients }, async (i, token) =>
    {
        var due = interval * i - pacing.Elapsed;
        if (due > TimeSpan.Zero)
        {
            await Task.Delay(due, token);
        }
        using var response = await api.PostAsJsonAsync("/api/orders", paced[i], WireFormat.Options, token);
        response.EnsureSuccessStatusCode();
    });
    var pacedIds = paced.Select(o => o.OrderId).ToArray();
    await WaitForRowsAsync(broker, CountRowsAsync, pacedIds, TimeSpan.FromMinutes(5));
    var (p50, p99) = await AcceptedToCommittedAsync(pacedIds);
    runs.Record("paced rate", acceptRate / 2);
    runs.Record("paced p50", p50);
    runs.Record("paced p99", p99);
}

var publishLimit = runs["publish"];
var copyLimit = runs["copy"];
Add("Broker publish with confirms (raw, quorum, 256 in flight)", publishLimit, "msg/s");
Add("Broker drain (raw, prefetch 1000, multiple acks)", runs["drain"], "msg/s");
Add("Database bulk insert (raw binary COPY, 500 orders per transaction)", copyLimit, "orders/s");
Add("Envio consumer drain (queue to committed rows)", runs["envio drain"], "msg/s", copyLimit, "of COPY");
Add("Envio end to end, HTTP batch endpoint (to committed rows)", runs["envio batch"], "msg/s", copyLimit, "of COPY");
Add($"Envio single-order POSTs, {clients} clients (to committed rows)", runs["singles committed"], "msg/s", publishLimit, "of publish");
Add($"Envio single-order POSTs, {clients} clients (HTTP)", runs["singles accepted"], "req/s", publishLimit, "of publish");
Add("  request latency p50", runs["request p50"], "ms");
Add("  request latency p99", runs["request p99"], "ms");
Add($"Accepted to committed at half the single-POST rate ({runs["paced rate"].Median:0} orders/s), p50", runs["paced p50"], "ms");
Add($"Accepted to committed at half the single-POST rate ({runs["paced rate"].Median:0} orders/s), p99", runs["paced p99"], "ms");
Add("Envio single order, CPU across the machine", runs.CostOf("Envio single POSTs, end to end"), "µs");

Add("Peak RSS, API", Single(PeakRssMegabytes("Envio.ApiService")), "MB");
Add("Peak RSS, consumer", Single(PeakRssMegabytes("Envio.ConsumerService")), "MB");

// What the cores allow: a pipeline on these cores cannot beat the CPU its raw parts cost per message, added up. A
// ratio to a bound is two factors: Envio's CPU per message against its raw parts' (the "CPU per message" rows), and
// how busy it keeps the cores (utilisation, in the CPU table).
var cores = Environment.ProcessorCount;
var drainParts = runs.CostOf("raw drain").Median + runs.CostOf("raw COPY").Median;
var batchParts = runs.CostOf("raw publish").Median + drainParts;
var drainBound = Single(cores * 1e6 / drainParts);
var batchBound = Single(cores * 1e6 / batchParts);
Add("CPU bound: drain + COPY on the same cores", drainBound, "msg/s");
Add("  Envio consumer drain against it", runs["envio drain"], "msg/s", drainBound, "of the bound");
Add("  its raw parts' CPU per message against Envio's", Single(drainParts), "µs", runs.CostOf("Envio consumer drain"), "of Envio's");
Add("CPU bound: publish + drain + COPY on the same cores", batchBound, "msg/s");
Add("  Envio HTTP batch end to end against it", runs["envio batch"], "msg/s", batchBound, "of the bound");
Add("  its raw parts' CPU per message against Envio's", Single(batchParts), "µs", runs.CostOf("Envio HTTP batch, end to end"), "of Envio's");

// Two types of data object: payments alone through their HTTP batch endpoint (what a payment costs, as the orders'
// phase above says what an order costs), then orders and payments at once, N/2 of each. Their rounds come after the
// orders' rounds, so that every figure above (peak RSS included) means what it meant before there were payments.
if (skip.Contains("mixed"))
{
    Console.WriteLine("Mixed-type rows skipped (--skip mixed).");
}
else
{
    await MixedTypeRoundsAsync();
    Add("Envio end to end, HTTP batch endpoint, payments (to committed rows)", runs["payments batch"], "msg/s", runs["envio batch"], "of orders'");
    Add("  Envio HTTP batch, CPU across the machine per order", runs.CostOf("Envio HTTP batch, end to end"), "µs");
    Add("  Envio HTTP batch, CPU across the machine per payment", runs.CostOf("Envio HTTP batch, payments, end to end"), "µs", runs.CostOf("Envio HTTP batch, end to end"), "of an order's");
    Add("Envio end to end, orders and payments at once, HTTP batch endpoints (to committed rows)", runs["mixed batch"], "msg/s", runs["envio batch"], "of orders alone");
    Add("  orders among them", runs["mixed orders"], "msg/s");
    Add("  payments among them", runs["mixed payments"], "msg/s");
    Add("  CPU across the machine per message, both types", runs.CostOf("Envio mixed HTTP batch, end to end"), "µs");
    Add("Peak RSS, API, through the mixed-type phases too", Single(PeakRssMegabytes("Envio.ApiService")), "MB");
    Add("Peak RSS, consumer, through the mixed-type phases too", Single(PeakRssMegabytes("Envio.ConsumerService")), "MB");
}

// The cost of high availability: the same HTTP batch phase on a stack whose broker is a three-node cluster (quorum
// queues with a member on each node), against the single node above. The single-node stack stops first.
await broker.CloseAsync(ct);
await app.StopAsync(ct);
if (skip.Contains("cluster"))
{
    Console.WriteLine("Cluster rows skipped (--skip cluster).");
}
else
{
    await ClusterBatchRatesAsync();
    Add("Envio end to end, HTTP batch endpoint, 3-node RabbitMQ cluster (to committed rows)", runs["cluster batch"], "msg/s", runs["envio batch"], "of 1 node");
}

// SQL Server: its raw limits and Envio's consumer draining into it, on a stack of its own that is given the server
// (ConnectionStrings:enviodb). The PostgreSQL stack stops first: both on the same cores would measure each other.
var (sqlServer, skipped) = skip.Contains("sqlserver") ? (null, "--skip sqlserver") : await SqlServerTarget.FindAsync(Option("--sqlserver"), ct);
Exception? sqlServerFailed = null;
if (sqlServer is null)
{
    Console.WriteLine($"SQL Server rows skipped: {skipped}.");
}
else
{
    await using (sqlServer)
    {
        try
        {
            await MeasureSqlServerAsync(sqlServer);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            sqlServerFailed = e; // the figures measured so far are still printed; the run fails below
        }
    }
}

Print();
PrintCpu();
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(jsonPath))!);
await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(new { n, quick, runs = rounds, cores = Environment.ProcessorCount, sqlServer = sqlServer?.Source ?? $"skipped: {skipped}", results, cpu = runs.MedianPhases },
    new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }), ct);
Console.WriteLine($"JSON: {Path.GetFullPath(jsonPath)}");
if (sqlServerFailed is not null)
{
    Console.Error.WriteLine($"The SQL Server measurements failed: {sqlServerFailed}");
    return 1;
}
return 0;

// Per round, on empty tables: N payments in batches of 1000 from 4 clients until every row is committed; then N/2
// orders and N/2 payments, their batches interleaved (an order batch, a payment batch, …), from 4 clients at once.
// The CPU of the mixed phase cannot be split by type (the same processes carry both): each type's CPU per message is
// its phase alone.
async Task MixedTypeRoundsAsync()
{
    var payments = BenchPayments.Type;
    var paymentsQueue = topology.NamesOf(payments).Queue;
    for (var round = 1; round <= rounds; round++)
    {
        Console.WriteLine($"Mixed-type round {round} of {rounds}…");
        await EmptyTablesAsync();
        await EmptyPaymentsAsync();

        var alone = Enumerable.Range(0, n).Select(i => BenchPayments.Create(5_000_000 + i, default)).ToList();
        var phaseCpu = cpu.Snapshot();
        var phaseStart = await DatabaseNowAsync();
        await Parallel.ForEachAsync(alone.Chunk(1_000), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (chunk, token) =>
        {
            using var response = await api.PostAsJsonAsync("/api/payments/batch", chunk.ToList(), WireFormat.Options, token);
            response.EnsureSuccessStatusCode();
        });
        var aloneIds = alone.Select(p => p.PaymentId).ToArray();
        await WaitForRowsAsync(broker, CountPaymentsAsync, aloneIds, TimeSpan.FromMinutes(10), paymentsQueue);
        var aloneElapsed = await LastReceivedAsync("payments", "payment_id", aloneIds) - phaseStart;
        runs.Record(CpuCounters.Since(phaseCpu, cpu.Snapshot(), "Envio HTTP batch, payments, end to end", aloneElapsed, n));
        runs.Record("payments batch", n / aloneElapsed.TotalSeconds);

        await EmptyPaymentsAsync();
        var half = n / 2;
        var orders = Enumerable.Range(0, half).Select(i => BenchOrders.Create(6_000_000 + i, default)).ToList();
        var mixedPayments = Enumerable.Range(0, n - half).Select(i => BenchPayments.Create(6_000_000 + i, default)).ToList();
        var orderBatches = orders.Chunk(1_000).Select(chunk => (Func<CancellationToken, Task<HttpResponseMessage>>)(token =>
            api.PostAsJsonAsync("/api/orders/batch", chunk.ToList(), WireFormat.Options, token))).ToList();
        var paymentBatches = mixedPayments.Chunk(1_000).Select(chunk => (Func<CancellationToken, Task<HttpResponseMessage>>)(token =>
            api.PostAsJsonAsync("/api/payments/batch", chunk.ToList(), WireFormat.Options, token))).ToList();
        var interleaved = Enumerable.Range(0, Math.Max(orderBatches.Count, paymentBatches.Count))
            .SelectMany(i => new[] { orderBatches.ElementAtOrDefault(i), paymentBatches.ElementAtOrDefault(i) })
            .OfType<Func<CancellationToken, Task<HttpResponseMessage>>>();
        phaseCpu = cpu.Snapshot();
        phaseStart = await DatabaseNowAsync();
        await Parallel.ForEachAsync(interleaved, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (post, token) =>
        {
            using var response = await post(token);
            response.EnsureSuccessStatusCode();
        });
        var orderIds = orders.Select(o => o.OrderId).ToArray();
        var paymentIds = mixedPayments.Select(p => p.PaymentId).ToArray();
        await WaitForRowsAsync(broker, CountRowsAsync, orderIds, TimeSpan.FromMinutes(10));
        await WaitForRowsAsync(broker, CountPaymentsAsync, paymentIds, TimeSpan.FromMinutes(10), paymentsQueue);
        var ordersElapsed = await LastReceivedAsync("orders", "order_id", orderIds) - phaseStart;
        var paymentsElapsed = await LastReceivedAsync("payments", "payment_id", paymentIds) - phaseStart;
        var bothElapsed = ordersElapsed > paymentsElapsed ? ordersElapsed : paymentsElapsed;
        runs.Record(CpuCounters.Since(phaseCpu, cpu.Snapshot(), "Envio mixed HTTP batch, end to end", bothElapsed, n));
        runs.Record("mixed batch", n / bothElapsed.TotalSeconds);
        runs.Record("mixed orders", half / ordersElapsed.TotalSeconds);
        runs.Record("mixed payments", (n - half) / paymentsElapsed.TotalSeconds);
    }

    async Task EmptyPaymentsAsync()
    {
        await using var empty = database.CreateCommand("TRUNCATE payments");
        await empty.ExecuteNonQueryAsync(ct);
    }
}

async Task MeasureSqlServerAsync(SqlServerTarget server)
{
    Console.WriteLine($"SQL Server: {server.Source}, database {server.DatabaseName}. Starting its stack (processes)…");
    var root = dataRoot + "-sqlserver";
    await using var stack = await StartStackAsync(root, $"--ConnectionStrings:enviodb={server.ConnectionString}");
    await using var queue = await ConnectBrokerAsync(stack);
    var ring = await BenchOrders.KeysAsync(stack);
    // From here on the phases are this stack's processes, and the server's when it is a shared/tds one on this machine.
    cpu = new CpuCounters(root, server.InstanceDirectory);
    if (server.InstanceDirectory is null)
    {
        Console.WriteLine("  Its CPU is not counted (not a shared/tds instance on this machine): SQL Server figures are wall-clock only.");
    }

    var orders = new SqlServerOrders(server.ConnectionString);
    for (var round = 1; round <= rounds; round++)
    {
        Console.WriteLine($"SQL Server round {round} of {rounds}…");
        await orders.EmptyAsync(ct);
        await SqlServerLimitAsync("raw SqlBulkCopy", "sqlbulkcopy", SqlServerLimits.BulkCopyAsync);
        await SqlServerLimitAsync("raw TVP", "tvp", SqlServerLimits.TableValuedAsync);
        var sqlDrain = await ConsumerDrainAsync("Envio consumer drain, SQL Server", stack, queue, ring, ids => orders.CountAsync(ids, ct), ids => orders.CommitSpanAsync(ids, ct));
        runs.Record("sqlserver drain", n / sqlDrain.TotalSeconds);
    }
    var (bulkCopy, tableValued) = (runs["sqlbulkcopy"], runs["tvp"]);
    Add("SQL Server bulk insert (raw SqlBulkCopy, 500 orders per transaction)", bulkCopy, "orders/s");
    Add("SQL Server bulk insert (raw table-valued parameters, 500 orders per round trip)", tableValued, "orders/s");
    var (limit, limitName) = bulkCopy.Median > tableValued.Median ? (bulkCopy, "SqlBulkCopy") : (tableValued, "TVP");
    Add("Envio consumer drain into SQL Server (queue to committed rows)", runs["sqlserver drain"], "msg/s", limit, $"of {limitName}");
    if (server.InstanceDirectory is not null)
    {
        // The broker's part is the PostgreSQL stack's raw drain: the same broker, the same messages.
        var parts = runs.CostOf("raw drain").Median + runs.CostOf($"raw {limitName}").Median;
        var bound = Single(cores * 1e6 / parts);
        Add($"CPU bound: drain + {limitName} on the same cores", bound, "msg/s");
        Add("  Envio consumer drain into SQL Server against it", runs["sqlserver drain"], "msg/s", bound, "of the bound");
        Add("  its raw parts' CPU per message against Envio's", Single(parts), "µs", runs.CostOf("Envio consumer drain, SQL Server"), "of Envio's");
    }

    // Into the consumer's tables (it migrated the database before it became healthy). The warm-up is outside the
    // phase's CPU, as it is outside its time.
    async Task SqlServerLimitAsync(string phase, string name, SqlServerLimits.Insert insert)
    {
        await SqlServerLimits.WarmUpAsync(server.ConnectionString, insert, ring, ct);
        await Measured(phase, name, n, () => SqlServerLimits.RateAsync(server.ConnectionString, insert, n, ring, ct));
    }
}

// N orders in batches of 1000 from 4 clients through a cluster stack, until every row is committed: orders/s, once
// per round.
async Task ClusterBatchRatesAsync()
{
    Console.WriteLine("Starting a stack whose broker is a 3-node cluster (processes)…");
    await using var stack = await StartStackAsync(dataRoot + "-cluster", "--Envio:Messaging:Nodes=3");
    await using var rows = NpgsqlDataSource.Create((await stack.OwnerConnectionStringAsync(ct)));
    using var client = new HttpClient { BaseAddress = stack.GetEndpoint("api", "http"), Timeout = TimeSpan.FromMinutes(2), DefaultRequestHeaders = { Authorization = TestTokens.Bearer() } };
    for (var round = 1; round <= rounds; round++)
    {
        Console.WriteLine($"Cluster round {round} of {rounds}…");
        var orders = Enumerable.Range(0, n).Select(i => BenchOrders.Create(4_000_000 + i, default)).ToList();
        var ids = orders.Select(o => o.OrderId).ToArray();
        await using (var empty = rows.CreateCommand("TRUNCATE order_items, orders"))
        {
            await empty.ExecuteNonQueryAsync(ct);
        }
        await using var now = rows.CreateCommand("SELECT clock_timestamp()");
        var started = (DateTime)(await now.ExecuteScalarAsync(ct))!;
        await Parallel.ForEachAsync(orders.Chunk(1_000), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (chunk, token) =>
        {
            using var response = await client.PostAsJsonAsync("/api/orders/batch", chunk.ToList(), WireFormat.Options, token);
            response.EnsureSuccessStatusCode();
        });
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(10);
        await using var last = rows.CreateCommand("SELECT count(*), max(received_at) FROM orders WHERE order_id = ANY($1)");
        last.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids });
        while (true)
        {
            await using var reader = await last.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            if (reader.GetInt64(0) == ids.Length)
            {
                runs.Record("cluster batch", n / (reader.GetDateTime(1) - started).TotalSeconds);
                break;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("The cluster stack's rows did not all arrive.");
            }
            await Task.Delay(200, ct);
        }
    }
}

async Task<DistributedApplication> StartStackAsync(string root, params string[] settings)
{
    var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Envio_AppHost>(
        ["--Envio:Hosting=processes", $"--Envio:Processes:DataRoot={root}", .. settings], ct);
    builder.TrustTestTokens();
    // Straight to the API's port: the orchestrator's development proxy in front of it (production has none) would
    // take a share of the cores and add a hop to every request.
    builder.CreateResourceBuilder<ProjectResource>("api").WithEndpoint("http", endpoint => endpoint.IsProxied = false)
        // A client's rate limit is a policy, not a cost: the benchmark's one client sends far more objects a second
        // than the default allows one client (5,000), and measures what the stack can take (--env can set it back).
        .WithEnvironment("Envio__Api__RateLimit__RequestsPerSecond", "10000000")
        .WithEnvironment("Envio__Api__RateLimit__Burst", "10000000");
    // --env [api:|consumer:]NAME=VALUE (repeatable): a setting for both services, or for the one named, to measure a
    // runtime or Envio setting without a rebuild.
    foreach (var setting in args.Select((a, i) => (a, i)).Where(x => x.a == "--env" && x.i + 1 < args.Length).Select(x => args[x.i + 1]))
    {
        var (services, nameAndValue) = setting.Split(':', 2) is [var named and ("api" or "consumer"), var rest]
            ? ([named], rest)
            : (new[] { "api", "consumer" }, setting);
        var (name, value) = nameAndValue.Split('=', 2) is [var variable, var assigned] ? (variable, assigned) : throw new ArgumentException($"--env {setting}: expected NAME=VALUE.");
        foreach (var service in services)
        {
            builder.CreateResourceBuilder<ProjectResource>(service).WithEnvironment(name, value);
        }
    }
    builder.Services.AddLogging(l => l.AddFilter(null, LogLevel.Warning).AddFilter("Aspire", LogLevel.Error).AddFilter("Envio.AppHost.Resources", LogLevel.Error).AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.None));
    var stack = await builder.BuildAsync(ct);
    try
    {
        await stack.StartAsync(ct);
        // A service that exits (a migration the server refuses, say) fails the wait at once; one that hangs, in time.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        foreach (var resource in new[] { "messaging", "enviodb", "api", "consumer" })
        {
            try
            {
                await stack.ResourceNotifications.WaitForResourceHealthyAsync(resource, WaitBehavior.StopOnResourceUnavailable, timeout.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                throw new TimeoutException($"The stack's {resource} did not become healthy within 5 minutes (see its log above).");
            }
        }
        return stack;
    }
    catch
    {
        await stack.DisposeAsync();
        throw;
    }
}

// Over TLS, trusting only the run's certificate authority, as the services do.
async Task<IConnection> ConnectBrokerAsync(DistributedApplication stack) =>
    await BrokerConnectionString.Parse((await stack.GetConnectionStringAsync("messaging", ct))!).ConfigureFactory(new ConnectionFactory())
        .TrustOnly(stack.Services.GetRequiredService<DevelopmentCertificates>().CaCertificatePath).CreateConnectionAsync(ct);

// Envio's consumer: N messages waiting in the queue, then the consumer drains them into rows; returns the span of
// their commits.
async Task<TimeSpan> ConsumerDrainAsync(string phase, DistributedApplication stack, IConnection queue, KeyRing ring,
    Func<Guid[], Task<long>> countRows, Func<Guid[], Task<TimeSpan>> commitSpan)
{
    await StopConsumerAsync(stack);
    var preloaded = Enumerable.Range(0, n).Select(i => BenchOrders.Create(i, DateTimeOffset.UtcNow)).ToList();
    await RawLimits.PublishAllAsync(queue, topology.Exchange, topology.RoutingKey, preloaded.Select(o => BenchOrders.Message(o, ring)).ToList(), ct);
    await StartAsync(stack, "consumer");
    var ids = preloaded.Select(o => o.OrderId).ToArray();
    // CPU is counted from the first committed rows on: the consumer's own start-up (JIT, connections) is not the drain.
    // The polls ask for the first ids only, which the queue hands out first: a count of every id costs the database
    // more than a poll should (SQL Server's literal lists: 0.25 s for 20,000 ids on Babelfish).
    var first = ids[..Math.Min(ids.Length, 500)];
    while (await countRows(first) == 0)
    {
        await Task.Delay(20, ct);
    }
    var stored = await countRows(ids);
    var before = cpu.Snapshot();
    // Likewise at the end: the phase's CPU stops when the last ids (committed last) are there; every id is checked after.
    await WaitForRowsAsync(queue, countRows, ids[^first.Length..], TimeSpan.FromMinutes(10));
    var after = cpu.Snapshot();
    await WaitForRowsAsync(queue, countRows, ids, TimeSpan.FromMinutes(1));
    var span = await commitSpan(ids);
    runs.Record(CpuCounters.Since(before, after, phase, span, (int)(n - stored)));
    return span;
}

string? Option(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

// The ratio is of the medians; the range is the figure's own.
void Add(string what, Figure value, string unit, Figure? limit = null, string? of = null) =>
    results.Add(new Result(what, Math.Round(value.Median, 1), Math.Round(value.Min, 1), Math.Round(value.Max, 1), unit,
        limit is { } l ? Math.Round(value.Median / l.Median * 100, 1) : null, of));

// A figure computed once from medians (a bound, a peak), not measured per run.
static Figure Single(double value) => new(value, value, value, 1);

void Print()
{
    Console.WriteLine();
    Console.WriteLine($"| measurement | median of {rounds} | min–max | unit | ratio to raw limit |");
    Console.WriteLine("|---|---:|---:|---|---:|");
    foreach (var r in results)
    {
        var range = r.Min == r.Max ? "" : $"{Format(r.Min)}–{Format(r.Max)}";
        Console.WriteLine($"| {r.What} | {Format(r.Value)} | {range} | {r.Unit} | {(r.Percent is { } p ? $"{p:0.#} % {r.Of}" : "")} |");
    }

    static string Format(double value) => value.ToString("#,0.#", CultureInfo.InvariantCulture);
}

async Task Measured(string phase, string name, int messages, Func<Task<double>> run)
{
    var before = cpu.Snapshot();
    var rate = await run();
    runs.Record(CpuCounters.Since(before, cpu.Snapshot(), phase, TimeSpan.FromSeconds(messages / rate), messages));
    runs.Record(name, rate);
}

void PrintCpu()
{
    Console.WriteLine();
    Console.WriteLine($"Where the time goes: CPU seconds per part of the stack in each phase, its median run ({Environment.ProcessorCount} cores; utilisation = all parts / (wall × cores))");
    Console.WriteLine($"| phase | wall s | {string.Join(" | ", CpuCounters.Parts)} | CPU µs per message | utilisation |");
    Console.WriteLine($"|---|---:|{string.Concat(CpuCounters.Parts.Select(_ => "---:|"))}---:|---:|");
    foreach (var p in runs.MedianPhases)
    {
        Console.WriteLine($"| {p.Name} | {p.WallSeconds:0.0} | {string.Join(" | ", CpuCounters.Parts.Select(part => p.CpuSeconds[part].ToString("0.0", CultureInfo.InvariantCulture)))} | {p.MicrosecondsPerMessage:0} | {p.Utilisation:P0} |");
    }
}

static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];

async Task StopConsumerAsync(DistributedApplication stack)
{
    var pid = PidOf(await stack.ResourceNotifications.WaitForResourceAsync("consumer", e => e.Snapshot.State?.Text == KnownResourceStates.Running, ct));
    Process.Start("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
    await stack.ResourceNotifications.WaitForResourceAsync("consumer", e => KnownResourceStates.TerminalStates.Contains(e.Snapshot.State?.Text), ct);
}

async Task StartAsync(DistributedApplication stack, string name)
{
    var resource = stack.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == name);
    await stack.ResourceCommands.ExecuteCommandAsync(resource, KnownResourceCommands.StartCommand, ct);
}

static int PidOf(ResourceEvent e) =>
    Convert.ToInt32(e.Snapshot.Properties.First(p => p.Name.EndsWith(".pid", StringComparison.Ordinal)).Value, CultureInfo.InvariantCulture);

// Each round starts on empty tables, as the first did: the figures do not drift with the size of the indexes.
async Task EmptyTablesAsync()
{
    await using var empty = database.CreateCommand("TRUNCATE order_items, orders");
    await empty.ExecuteNonQueryAsync(ct);
}

async Task<long> CountRowsAsync(Guid[] ids)
{
    await using var count = database.CreateCommand("SELECT count(*) FROM orders WHERE order_id = ANY($1)");
    count.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids });
    return (long)(await count.ExecuteScalarAsync(ct))!;
}

async Task<long> CountPaymentsAsync(Guid[] ids)
{
    await using var count = database.CreateCommand("SELECT count(*) FROM payments WHERE payment_id = ANY($1)");
    count.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids });
    return (long)(await count.ExecuteScalarAsync(ct))!;
}

// The last commit of these rows (received_at is its transaction's time).
async Task<DateTime> LastReceivedAsync(string table, string key, Guid[] ids)
{
    await using var last = database.CreateCommand($"SELECT max(received_at) FROM {table} WHERE {key} = ANY($1)");
    last.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids });
    return (DateTime)(await last.ExecuteScalarAsync(ct))!;
}

// The database's clock, which also stamps received_at (a batch's transaction time): a phase ends with its last batch,
// not at the next poll.
async Task<DateTime> DatabaseNowAsync()
{
    await using var now = database.CreateCommand("SELECT clock_timestamp()");
    return (DateTime)(await now.ExecuteScalarAsync(ct))!;
}

async Task<TimeSpan> UntilCommittedAsync(Guid[] ids, DateTime started)
{
    await WaitForRowsAsync(broker, CountRowsAsync, ids, TimeSpan.FromMinutes(10));
    await using var last = database.CreateCommand("SELECT max(received_at) FROM orders WHERE order_id = ANY($1)");
    last.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids });
    return (DateTime)(await last.ExecuteScalarAsync(ct))! - started;
}

// The exact check carries every id, and what it costs the database would be taken from the phase it waits for: so
// the broker is asked first (cheap) until the work queue (the orders', unless named) has nothing ready, and only then
// the database.
async Task WaitForRowsAsync(IConnection queue, Func<Guid[], Task<long>> countRows, Guid[] ids, TimeSpan timeout, string? workQueue = null)
{
    var deadline = DateTime.UtcNow + timeout;
    await using (var channel = await queue.CreateChannelAsync(cancellationToken: ct))
    {
        while ((await channel.QueueDeclarePassiveAsync(workQueue ?? topology.Queue, ct)).MessageCount > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, ct);
        }
    }
    while (await countRows(ids) < ids.Length)
    {
        if (DateTime.UtcNow > deadline)
        {
            throw new TimeoutException("The rows did not all arrive.");
        }
        await Task.Delay(50, ct);
    }
}

async Task<TimeSpan> CommitSpanAsync(Guid[] ids)
{
    await using var span = database.CreateCommand("SELECT max(received_at) - min(received_at) FROM orders WHERE order_id = ANY($1)");
    span.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids });
    var value = (TimeSpan)(await span.ExecuteScalarAsync(ct))!;
    return value > TimeSpan.Zero ? value : TimeSpan.FromMilliseconds(1);
}

// created_at is when the API accepted the order (it fills in the time); received_at is the commit's transaction time.
async Task<(double P50, double P99)> AcceptedToCommittedAsync(Guid[] ids)
{
    await using var command = database.CreateCommand("""
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - created_at)),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - created_at))
        FROM orders WHERE order_id = ANY($1)
        """);
    command.Parameters.Add(new NpgsqlParameter<Guid[]> { TypedValue = ids });
    await using var reader = await command.ExecuteReaderAsync(ct);
    await reader.ReadAsync(ct);
    return (reader.GetDouble(0) * 1000, reader.GetDouble(1) * 1000);
}

// VmHWM: the peak resident set of the service's own process (not its `dotnet run` wrapper).
static double PeakRssMegabytes(string service)
{
    foreach (var entry in Directory.EnumerateDirectories("/proc"))
    {
        try
        {
            var commandLine = File.ReadAllText(Path.Combine(entry, "cmdline")).Split('\0')[0];
            if (commandLine.EndsWith("/" + service, StringComparison.Ordinal))
            {
                var peak = File.ReadLines(Path.Combine(entry, "status")).First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
                return double.Parse(peak.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
            }
        }
        catch (IOException)
        {
            // Gone meanwhile.
        }
    }
    return double.NaN;
}

internal sealed record Result(string What, double Value, double Min, double Max, string Unit, double? Percent, string? Of);
