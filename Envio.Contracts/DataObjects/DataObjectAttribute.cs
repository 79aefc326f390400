namespace Envio.Contracts.DataObjects;

/// <summary>
/// Marks a record as a data object Envio carries: its name gives the wire type (<c>envio.{name}</c>), the routes
/// (<c>/api/{plural}</c>), the queues (<c>envio.{plural}</c>) and the table (<c>{plural}</c>). Its id is the
/// <see cref="Guid"/> property named <c>{Name}Id</c> (or marked <see cref="System.ComponentModel.DataAnnotations.KeyAttribute"/>);
/// a <see cref="DateTimeOffset"/> <c>CreatedAt</c>, when it has one, is filled in by the API when a client leaves it out.
/// Its rules are the DataAnnotations attributes on its properties, unless <see cref="Rules"/> names a class that checks
/// everything itself. A name is permanent: it is bound into every encrypted message and column (see docs/development.md).
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class DataObjectAttribute(string name) : Attribute
{
    /// <summary>Lower case letters and digits, words joined by '-' (<c>order</c>, <c>credit-note</c>).</summary>
    public string Name { get; } = name;

    /// <summary>The plural the routes, queues and table use; <see cref="Name"/> + "s" when not given.</summary>
    public string? Plural { get; init; }

    /// <summary>
    /// The schema version this build writes, and the newest it reads. From 2, the record reads older bodies with a
    /// <c>public static JsonObject Upcast(int fromVersion, JsonObject body)</c> (version n to n + 1), and may write
    /// older ones with <c>public static JsonObject Downcast(int toVersion, JsonObject body)</c> (n + 1 to n), so the API
    /// can keep publishing the previous version until every consumer reads the new one (docs/development.md, "Versions").
    /// </summary>
    public int SchemaVersion { get; init; } = 1;

    /// <summary>
    /// A static class whose <c>Validate(T? value, string path, Dictionary&lt;string, List&lt;string&gt;&gt; errors)</c>
    /// holds every rule of the type, in place of its attributes' rules (Order's predate the attributes, and their
    /// messages are part of its contract).
    /// </summary>
    public Type? Rules { get; init; }

    /// <summary>
    /// The SQL Server table type a batch's rows travel in; <c>{name}_row</c> when not given (with '-' as '_'). Orders
    /// name theirs for history (<c>order_row_with_client</c>).
    /// </summary>
    public string? SqlServerRowType { get; init; }
}

/// <summary>
/// A text property stored encrypted (AES-256-GCM with the key ring), bound to its table, column and the object's id, so
/// a value copied onto another row or column does not open. Its column holds bytes (<c>bytea</c>, <c>varbinary(max)</c>).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SealedAttribute : Attribute;

/// <summary>An ISO 4217 currency code in upper case (<c>EUR</c>, <c>BRL</c>): stored as <c>char(3)</c>.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class CurrencyCodeAttribute : Attribute;
