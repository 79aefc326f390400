namespace Envio.Tests.Support;

/// <summary>
/// One fault's figures: what the clients were told (202, 503, no answer), what the database holds, and what the
/// consumer found already stored when the broker delivered it again.
/// </summary>
/// <param name="Fault">What was injected, as the README's table names it.</param>
/// <param name="Accepted">Orders answered 202.</param>
/// <param name="Stored">Of those, orders with a row.</param>
/// <param name="StoredNotAsSent">Stored orders (accepted or unanswered) whose row or items differ from what was sent.</param>
/// <param name="Refused">Orders answered 503 (the client would send them again).</param>
/// <param name="RefusedStored">Of those, orders with a row (a confirm that timed out; the client's retry, same id, is absorbed).</param>
/// <param name="Unanswered">Orders with no answer (timeout, connection lost).</param>
/// <param name="UnansweredStored">Of those, orders with a row (stored whole: they reached the broker).</param>
/// <param name="FoundStored">Deliveries the consumer committed without a new row: redeliveries absorbed by the idempotent insert.</param>
/// <param name="ErrorQueue">Messages in the error queue.</param>
public sealed record ReliabilityRow(
    string Fault, int Accepted, long Stored, long StoredNotAsSent, int Refused, long RefusedStored, int Unanswered, long UnansweredStored, long? FoundStored, int ErrorQueue)
{
    public long Lost => Accepted - Stored;

    public override string ToString() =>
        $"| {Fault} | {Accepted} | {Stored} | {Lost} | {StoredNotAsSent} | {Refused} ({RefusedStored} stored) | {Unanswered} ({UnansweredStored} stored) | {FoundStored?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "not measured"} | {ErrorQueue} |";
}

/// <summary>
/// TestResults/reliability.md, the README's reliability table: one row per fault test, in whatever order they ran.
/// test.sh deletes the file before a run and prints it after.
/// </summary>
public static class ReliabilityTable
{
    public const string Header =
        "| fault | accepted (202) | stored | lost | stored ≠ sent | refused (503) | unanswered | redelivered, found stored | error queue |\n" +
        "|---|---|---|---|---|---|---|---|---|";

    private static readonly Lock Writing = new();

    public static string FilePath => Path.Combine(Repository.Root, "TestResults", "reliability.md");

    /// <summary>Adds the row to the file (with the header, when the file is new) and to the test's output.</summary>
    public static void Add(ReliabilityRow row)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(Header);
        TestContext.Current.TestOutputHelper?.WriteLine(row.ToString());
        lock (Writing)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
            if (!File.Exists(FilePath))
            {
                File.WriteAllText(FilePath, Header + Environment.NewLine);
            }
            File.AppendAllText(FilePath, row + Environment.NewLine);
        }
    }
}
