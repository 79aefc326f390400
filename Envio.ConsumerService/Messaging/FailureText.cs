using System.Text.RegularExpressions;
using Microsoft.Data.SqlClient;
using Npgsql;

namespace Envio.ConsumerService.Messaging;

/// <summary>
/// An exception as a failed message may carry it in its headers, which the broker keeps on disk in clear beside the
/// encrypted body: why it failed (the error's code and sentence, the constraint, table and column it names), never the
/// values that failed nor a stack trace. A database quotes the offending value in some of its errors (SQL Server's
/// truncation 2628 and conversion 245, PostgreSQL's detail "Failing row contains (…)" once a connection string sets
/// Include Error Detail), and those values may be a customer's data that the body's encryption was meant to protect.
/// </summary>
public static partial class FailureText
{
    /// <summary>A reason that fits a header and a log line; the rest of a long error adds nothing an operator acts on.</summary>
    public const int MaxLength = 400;

    public const string Redacted = "…";

    /// <summary>The failure's code and sentence, values redacted: PostgreSQL's message text without its detail, SQL Server's number and first line.</summary>
    public static string Of(Exception exception) => Cap(DatabaseErrorIn(exception) switch
    {
        PostgresException postgres => $"{postgres.SqlState}: {Redact(postgres.MessageText)}",
        SqlException sql => $"SQL Server error {sql.Number}: {Redact(FirstLine(sql.Message))}",
        _ => Redact(FirstLine(exception.Message)),
    });

    /// <summary>The exception's type with <see cref="Of"/>: what the error header keeps.</summary>
    public static string WithType(Exception exception) => Cap($"{(DatabaseErrorIn(exception) ?? exception).GetType().FullName}: {Of(exception)}");

    /// <summary>
    /// Every literal that follows the word "value" (quoted, or a parenthesised list as in a duplicate key's "value is
    /// (…)"), and PostgreSQL's "for type T: "…"" input errors, become <see cref="Redacted"/>; names of tables,
    /// columns and constraints, quoted the same way but never after "value", stay.
    /// </summary>
    public static string Redact(string text) =>
        InputSyntaxLiteral().Replace(ValueLiteral().Replace(text, "$1" + Redacted), "$1" + Redacted);

    private static Exception? DatabaseErrorIn(Exception exception) => exception switch
    {
        PostgresException or SqlException => exception,
        { InnerException: { } inner } => DatabaseErrorIn(inner),
        _ => null,
    };

    private static string FirstLine(string text) => text.Split('\n', 2)[0].TrimEnd('\r');

    private static string Cap(string text) => text.Length <= MaxLength ? text : string.Concat(text.AsSpan(0, MaxLength - 1), Redacted);

    [GeneratedRegex("""(\bvalues?(?:\s+is)?:?\s*)(?:'(?:[^']|'')*'|"(?:[^"]|"")*"|\((?:[^()'"]|'(?:[^']|'')*'|"(?:[^"]|"")*")*\))""", RegexOptions.IgnoreCase)]
    private static partial Regex ValueLiteral();

    [GeneratedRegex("""(\bfor (?:type|encoding) [^:]{1,80}:\s*)(?:"(?:[^"]|"")*"|'(?:[^']|'')*'|\S+)""", RegexOptions.IgnoreCase)]
    private static partial Regex InputSyntaxLiteral();
}
