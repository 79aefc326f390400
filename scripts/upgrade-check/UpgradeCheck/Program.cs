// The in-place upgrade check's helpers, called by ../run.sh. Each command prints its result on stdout and exits
// non-zero when something is not as it must be. The connection string says the engine (Host= is PostgreSQL).
//
//   token   <issuer> <audience> <signing key, base64> <scope>...   a bearer token (HS256), valid for 4 hours
//   post    <api> <token> order|payment <count> <ids file>         posts one object per request; a line per post:
//                                                                  "<status> <id>" (the id appended to the file on 202)
//   replay  <api> <token> <type>                                   POST /admin/errors/replay?type=<type> {"all":true}:
//                                                                  "<replayed> <not found>"
//   stored  <connection string> <ids file>                         "<rows> <distinct ids> <item rows> <distinct shapes>"
//                                                                  of those orders (shape: every column but the id and
//                                                                  the reception's, items included)
//   open    <connection string> <ids file> <key id> <key, base64>  opens customer_email and customer_document of those
//                                                                  orders with SensitiveColumns; "<values opened>"
//   payments <connection string> <ids file> <key id> <key, base64> "<rows> <payer documents opened>"
//   journal <connection string>                                    the migration journal, "<script>|<applied>" per row
using System.Data.Common;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Envio.Contracts.Security;
using Microsoft.Data.SqlClient;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Npgsql;

var command = args.Length > 0 ? args[0] : "";
try
{
    return command switch
    {
        "token" when args.Length >= 5 => Token(args[1], args[2], args[3], args[4..]),
        "post" when args.Length == 6 => await PostAsync(args[1], args[2], args[3], int.Parse(args[4], CultureInfo.InvariantCulture), args[5]),
        "replay" when args.Length == 4 => await ReplayAsync(args[1], args[2], args[3]),
        "stored" when args.Length == 3 => await StoredAsync(args[1], args[2]),
        "open" when args.Length == 5 => await OpenAsync(args[1], args[2], Ring(args[3], args[4])),
        "payments" when args.Length == 5 => await PaymentsAsync(args[1], args[2], Ring(args[3], args[4])),
        "journal" when args.Length == 2 => await JournalAsync(args[1]),
        _ => Usage(),
    };
}
catch (Exception e) when (e is DbException or HttpRequestException or InvalidOperationException or IOException or JsonException or KeyNotFoundException)
{
    await Console.Error.WriteLineAsync($"upgrade-check {command}: {e.GetType().Name}: {e.Message}");
    return 2;
}

static int Usage()
{
    Console.Error.WriteLine("usage: UpgradeCheck token|post|replay|stored|open|payments|journal ... (see Program.cs)");
    return 64;
}

static int Token(string issuer, string audience, string signingKey, string[] scopes)
{
    var expires = DateTime.UtcNow.AddHours(4);
    Console.WriteLine(new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
    {
        Issuer = issuer,
        Audience = audience,
        IssuedAt = expires.AddHours(-5),
        NotBefore = expires.AddHours(-5),
        Expires = expires,
        Claims = new Dictionary<string, object>
        {
            ["sub"] = "upgrade-check",
            ["client_id"] = "upgrade-check",
            ["scope"] = string.Join(' ', scopes),
        },
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Convert.FromBase64String(signingKey)), SecurityAlgorithms.HmacSha256),
    }));
    return 0;
}

static async Task<int> PostAsync(string api, string token, string type, int count, string idsFile)
{
    using var http = Client(api, token);
    var failed = 0;
    for (var i = 0; i < count; i++)
    {
        var id = Guid.CreateVersion7();
        var (path, body) = type switch
        {
            "order" => ("/api/orders", Samples.Order(id)),
            "payment" => ("/api/payments", Samples.Payment(id)),
            _ => throw new InvalidOperationException($"Unknown type '{type}' (order or payment)."),
        };
        using var response = await http.PostAsync(new Uri(path, UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json"));
        Console.WriteLine($"{(int)response.StatusCode} {id}");
        if ((int)response.StatusCode == 202)
        {
            await File.AppendAllTextAsync(idsFile, id + "\n");
        }
        else
        {
            failed++;
            await Console.Error.WriteLineAsync($"POST {path} {id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }
    return failed == 0 ? 0 : 3;
}

static async Task<int> ReplayAsync(string api, string token, string type)
{
    using var http = Client(api, token);
    using var response = await http.PostAsync(new Uri($"/admin/errors/replay?type={Uri.EscapeDataString(type)}", UriKind.Relative),
        new StringContent("""{"all":true}""", Encoding.UTF8, "application/json"));
    var body = await response.Content.ReadAsStringAsync();
    await Console.Error.WriteLineAsync($"replay: {(int)response.StatusCode} {body}");
    if (!response.IsSuccessStatusCode)
    {
        return 3;
    }
    using var outcome = JsonDocument.Parse(body);
    Console.WriteLine($"{outcome.RootElement.GetProperty("replayed").GetArrayLength()} {outcome.RootElement.GetProperty("notFound").GetArrayLength()}");
    return 0;
}

static async Task<int> StoredAsync(string connectionString, string idsFile)
{
    var ids = await IdsAsync(idsFile);
    var rows = new List<Guid>();
    var shapes = new Dictionary<Guid, string>();
    await foreach (var record in QueryAsync(connectionString, "SELECT order_id, customer_name, currency, total, created_at, client_id FROM orders"))
    {
        if (ids.Contains(record.GetGuid(0)))
        {
            rows.Add(record.GetGuid(0));
            shapes[record.GetGuid(0)] = Shape(record);
        }
    }
    var items = new Dictionary<Guid, List<string>>();
    await foreach (var record in QueryAsync(connectionString, "SELECT order_id, line_no, sku, quantity, unit_price FROM order_items"))
    {
        if (ids.Contains(record.GetGuid(0)))
        {
            (items.TryGetValue(record.GetGuid(0), out var lines) ? lines : items[record.GetGuid(0)] = []).Add(Shape(record));
        }
    }
    // Every order is sent with the same content: one shape means the builds stored them alike, value for value.
    var distinctShapes = shapes.Select(s => s.Value + " / " + string.Join(" ; ", (items.GetValueOrDefault(s.Key) ?? []).Order(StringComparer.Ordinal)))
        .Distinct(StringComparer.Ordinal).Count();
    Console.WriteLine($"{rows.Count} {rows.Distinct().Count()} {items.Values.Sum(l => l.Count)} {distinctShapes}");
    return 0;
}

// The columns after the id, as the engine returns them (type and value).
static string Shape(DbDataReader record) => string.Join(" | ", Enumerable.Range(1, record.FieldCount - 1)
    .Select(i => $"{record.GetFieldType(i).Name}:{Convert.ToString(record.GetValue(i), CultureInfo.InvariantCulture)}"));

static async Task<int> OpenAsync(string connectionString, string idsFile, KeyRing keys)
{
    var ids = await IdsAsync(idsFile);
    var (opened, wrong) = (0, 0);
    await foreach (var record in QueryAsync(connectionString, "SELECT order_id, customer_email, customer_document FROM orders"))
    {
        var id = record.GetGuid(0);
        if (!ids.Contains(id))
        {
            continue;
        }
        foreach (var (ordinal, column, expected) in new[]
        {
            (1, SensitiveColumns.CustomerEmail, Samples.Email(id)),
            (2, SensitiveColumns.CustomerDocument, Samples.Document(id)),
        })
        {
            try
            {
                var value = SensitiveColumns.Open(keys, id, column, record.GetFieldValue<byte[]>(ordinal));
                if (value == expected)
                {
                    opened++;
                    continue;
                }
                await Console.Error.WriteLineAsync($"order {id} {column}: opened to '{value}', sent '{expected}'");
            }
            catch (UndecryptableException e)
            {
                await Console.Error.WriteLineAsync($"order {id} {column}: {e.Message}");
            }
            wrong++;
        }
    }
    Console.WriteLine(opened);
    return wrong == 0 ? 0 : 3;
}

static async Task<int> PaymentsAsync(string connectionString, string idsFile, KeyRing keys)
{
    var ids = await IdsAsync(idsFile);
    var (rows, opened) = (0, 0);
    await foreach (var record in QueryAsync(connectionString, "SELECT payment_id, payer_document FROM payments"))
    {
        var id = record.GetGuid(0);
        if (!ids.Contains(id))
        {
            continue;
        }
        rows++;
        var value = SensitiveColumns.Open(keys, "payments", "payer_document", id, record.GetFieldValue<byte[]>(1));
        opened += value == Samples.Document(id) ? 1 : 0;
    }
    Console.WriteLine($"{rows} {opened}");
    return 0;
}

static async Task<int> JournalAsync(string connectionString)
{
    var sql = IsPostgres(connectionString)
        ? "SELECT scriptname, applied FROM schemaversions ORDER BY schemaversionsid"
        : "SELECT ScriptName, Applied FROM dbo.SchemaVersions ORDER BY Id";
    await foreach (var record in QueryAsync(connectionString, sql))
    {
        Console.WriteLine($"{record.GetString(0)}|{record.GetDateTime(1).ToString("yyyy-MM-ddTHH:mm:ss.ffffff", CultureInfo.InvariantCulture)}");
    }
    return 0;
}

static HttpClient Client(string api, string token) => new()
{
    BaseAddress = new Uri(api),
    DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", token) },
};

static KeyRing Ring(string keyId, string key) => new(keyId, new Dictionary<string, byte[]> { [keyId] = Convert.FromBase64String(key) });

static async Task<HashSet<Guid>> IdsAsync(string file) =>
    (await File.ReadAllLinesAsync(file)).Where(line => line.Length > 0).Select(Guid.Parse).ToHashSet();

static bool IsPostgres(string connectionString) =>
    new DbConnectionStringBuilder { ConnectionString = connectionString }.ContainsKey("Host");

static async IAsyncEnumerable<DbDataReader> QueryAsync(string connectionString, string sql)
{
    await using DbConnection connection = IsPostgres(connectionString)
        ? new NpgsqlConnection(connectionString)
        : new SqlConnection(connectionString);
    await connection.OpenAsync();
    await using var query = connection.CreateCommand();
#pragma warning disable CA2100 // the statements are this file's constants
    query.CommandText = sql;
#pragma warning restore CA2100
    await using var reader = await query.ExecuteReaderAsync();
    while (await reader.ReadAsync())
    {
        yield return reader;
    }
}

/// <summary>What the check sends: every sealed value is derived from the object's id, so it can be checked after.</summary>
internal static class Samples
{
    public static string Email(Guid id) => $"c{id:N}@example.com";

    // Non-ASCII on purpose: the sealed bytes are UTF-8.
    public static string Document(Guid id) => $"Nº {id:N}";

    public static string Order(Guid id) => $$"""
        {"orderId":"{{id}}","customer":{"name":"Conceição Upgrade","email":"{{Email(id)}}","document":"{{Document(id)}}"},
         "currency":"BRL","items":[{"sku":"BOOK-001","quantity":2,"unitPrice":39.90},{"sku":"PEN-042","quantity":3,"unitPrice":4.50}],
         "total":93.30,"createdAt":"2026-11-27T10:15:00Z"}
        """;

    public static string Payment(Guid id) => $$"""
        {"paymentId":"{{id}}","reference":"INV-{{id.ToString("N")[..8]}}","method":"pix","amount":93.30,"currency":"BRL",
         "payer":{"name":"Conceição Upgrade","document":"{{Document(id)}}"},"dueDate":"2026-12-01","note":"upgrade check",
         "createdAt":"2026-11-27T10:15:00Z"}
        """;
}
