using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;

namespace Envio.Contracts.DataObjects;

/// <summary>Turns a <see cref="DataObjectType"/> into code typed by its record (endpoints, batch handlers, table maps).</summary>
public interface IDataObjectTypeVisitor<out TResult>
{
    TResult Visit<T>(DataObjectType<T> type) where T : class;
}

/// <summary>
/// Everything Envio knows about one type of data object, read once at start-up from its record (see
/// <see cref="DataObjectAttribute"/>): names, schema version, JSON metadata, rules and members. What is not
/// typed by the record (routes, queues, the admin API, telemetry) works from here; what is typed gets it through
/// <see cref="Accept{TResult}"/>.
/// </summary>
public abstract partial class DataObjectType
{
    private protected DataObjectType(Type clrType)
    {
        ClrType = clrType;
        var declaration = clrType.GetCustomAttribute<DataObjectAttribute>()
            ?? throw new InvalidOperationException($"{clrType.Name} is registered as a data object but has no [DataObject(\"name\")].");
        if (!ValidName().IsMatch(declaration.Name) || (declaration.Plural is { } p && !ValidName().IsMatch(p)))
        {
            throw new InvalidOperationException(
                $"{clrType.Name}: the data object name '{declaration.Name}' (plural '{declaration.Plural}') must be lower case letters and digits, words joined by '-'.");
        }
        if (declaration.SchemaVersion < 1)
        {
            throw new InvalidOperationException($"{clrType.Name}: SchemaVersion starts at 1.");
        }
        Name = declaration.Name;
        Plural = declaration.Plural ?? declaration.Name + "s";
        SchemaVersion = declaration.SchemaVersion;
        SqlServerRowType = declaration.SqlServerRowType ?? Name.Replace('-', '_') + "_row";
        Members = DataObjectMember.Of(clrType, clrType.Name, collectionsAllowed: true);
        var idName = PascalName + "Id";
        Id = Members.SingleOrDefault(m => m.Property.GetCustomAttribute<System.ComponentModel.DataAnnotations.KeyAttribute>() is not null)
            ?? Members.SingleOrDefault(m => m.Name == idName)
            ?? throw new InvalidOperationException($"{clrType.Name} has no id: a Guid property named {idName}, or one marked [Key].");
        if (Id.ValueType != typeof(Guid) || Id.IsNullable || Id.Kind != MemberKind.Value)
        {
            throw new InvalidOperationException($"{clrType.Name}.{Id.Name}: the id is a (non-nullable) Guid: the message id and the idempotency key.");
        }
        CreatedAt = Members.SingleOrDefault(m => m.Name == "CreatedAt" && m.ValueType == typeof(DateTimeOffset) && !m.IsNullable);
    }

    public Type ClrType { get; }

    /// <summary><c>order</c>, <c>credit-note</c>.</summary>
    public string Name { get; }

    /// <summary><c>orders</c>: routes, queues and the table are named from it.</summary>
    public string Plural { get; }

    /// <summary><c>Order</c>, <c>CreditNote</c>: operation ids and schema names.</summary>
    public string PascalName => Naming.PascalCase(Name);

    /// <summary><c>order</c>, <c>creditNote</c>: JSON names (<c>orderIds</c>).</summary>
    public string CamelName => Naming.CamelCase(Name);

    /// <summary>The AMQP message type: <c>envio.order</c>.</summary>
    public string WireType => "envio." + Name;

    /// <summary>The version this build writes, and the newest it reads.</summary>
    public int SchemaVersion { get; }

    /// <summary>The name of the ids in answers: <c>orderIds</c>.</summary>
    public string IdsName => CamelName + "Ids";

    /// <summary>The scope that allows sending this type only (<c>envio.send</c> allows every type).</summary>
    public string SendScope => "envio.send." + Plural;

    /// <summary>The table its objects are stored in: <c>orders</c>.</summary>
    public string Table => Plural.Replace('-', '_');

    /// <summary>The SQL Server table type of its rows (see <see cref="DataObjectAttribute.SqlServerRowType"/>).</summary>
    public string SqlServerRowType { get; }

    /// <summary>The record's properties, in declaration order.</summary>
    public IReadOnlyList<DataObjectMember> Members { get; }

    /// <summary>The id property: the message id, the primary key, the idempotency key.</summary>
    public DataObjectMember Id { get; }

    /// <summary>The <c>CreatedAt</c> property, when the record has one: the API fills it in when a client leaves it out.</summary>
    public DataObjectMember? CreatedAt { get; }

    public abstract JsonTypeInfo JsonTypeInfo { get; }

    /// <summary>
    /// Whether this build can write <paramref name="version"/>: its own, or an older one its record's <c>Downcast</c>
    /// makes (the API publishes the version its configuration names, during a rolling update).
    /// </summary>
    public abstract bool CanWrite(int version);

    public abstract TResult Accept<TResult>(IDataObjectTypeVisitor<TResult> visitor);

    /// <summary>The type of <typeparamref name="T"/>, with its JSON metadata from the wire format's source-generated context.</summary>
    public static DataObjectType<T> Of<T>() where T : class => new(typeof(T), (JsonTypeInfo<T>)WireFormat.TypeInfo(typeof(T)));

    /// <summary>A type with JSON metadata of its own (a test's type, outside the registry).</summary>
    public static DataObjectType<T> Of<T>(JsonTypeInfo<T> json) where T : class => new(typeof(T), json);

    public override string ToString() => Name;

    [GeneratedRegex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]
    private static partial Regex ValidName();
}

public sealed class DataObjectType<T> : DataObjectType where T : class
{
    private readonly Func<T, Guid> _id;
    private readonly Action<T, Guid> _setId;
    private readonly Func<T, DateTimeOffset>? _createdAt;
    private readonly Action<T, DateTimeOffset>? _setCreatedAt;
    private readonly AttributeRules.Check<T> _rules;
    private readonly string _missing;

    private readonly Func<int, JsonObject, JsonObject>? _upcast;
    private readonly Func<int, JsonObject, JsonObject>? _downcast;

    internal DataObjectType(Type type, JsonTypeInfo<T> json) : base(type)
    {
        Json = json;
        List = (JsonTypeInfo<List<T>>)json.Options.GetTypeInfo(typeof(List<T>));
        _upcast = Converter(type, "Upcast");
        _downcast = Converter(type, "Downcast");
        if (SchemaVersion > 1 && _upcast is null)
        {
            throw new InvalidOperationException(
                $"{type.Name} is at schema version {SchemaVersion}: it reads the versions before it with a public static " +
                "JsonObject Upcast(int fromVersion, JsonObject body) that turns a body of fromVersion into one of fromVersion + 1.");
        }
        _id = Accessors.Getter<T, Guid>(Id.Property);
        _setId = Accessors.Setter<T, Guid>(Id.Property);
        if (CreatedAt is not null)
        {
            _createdAt = Accessors.Getter<T, DateTimeOffset>(CreatedAt.Property);
            _setCreatedAt = Accessors.Setter<T, DateTimeOffset>(CreatedAt.Property);
        }
        _rules = RulesOf(type);
        _missing = $"A{(Name[0] is 'a' or 'e' or 'i' or 'o' or 'u' ? "n" : "")} {Name.Replace('-', ' ')} is required.";
    }

    public JsonTypeInfo<T> Json { get; }

    /// <summary>A JSON array of them: a batch request's body.</summary>
    public JsonTypeInfo<List<T>> List { get; }

    public override JsonTypeInfo JsonTypeInfo => Json;

    public override TResult Accept<TResult>(IDataObjectTypeVisitor<TResult> visitor) => visitor.Visit(this);

    public Guid IdOf(T value) => _id(value);

    public DateTimeOffset? CreatedAtOf(T value) => _createdAt?.Invoke(value);

    /// <summary>
    /// What the API fills in on an object it has just read: a missing id becomes a new UUIDv7 (time-ordered, friendly
    /// to the table's index), a missing creation time <paramref name="now"/>. A given id is kept: a client's retry is
    /// absorbed downstream.
    /// </summary>
    public void FillIn(T value, DateTimeOffset now)
    {
        if (_id(value) == Guid.Empty)
        {
            _setId(value, Guid.CreateVersion7(now));
        }
        if (_createdAt is not null && _createdAt(value) == default)
        {
            _setCreatedAt!(value, now);
        }
    }

    /// <summary>Adds every rule <paramref name="value"/> breaks to <paramref name="errors"/>, keyed by JSON path under <paramref name="path"/>.</summary>
    public void Validate(T? value, string path, Dictionary<string, List<string>> errors) => _rules(value!, path, errors);

    public T? Deserialize(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, Json);

    /// <summary>
    /// A body of schema version <paramref name="version"/> (at most <see cref="DataObjectType.SchemaVersion"/>): an older
    /// one is upcast by the record's <c>Upcast</c>, one version at a time, before it is read.
    /// </summary>
    public T? Deserialize(ReadOnlySpan<byte> json, int version)
    {
        if (version >= SchemaVersion)
        {
            return Deserialize(json);
        }
        var body = JsonNode.Parse(json)?.AsObject() ?? throw new JsonException("The body is null.");
        for (; version < SchemaVersion; version++)
        {
            body = _upcast!(version, body);
        }
        return body.Deserialize(Json);
    }

    public override bool CanWrite(int version) => version == SchemaVersion || (version is >= 1 && version < SchemaVersion && _downcast is not null);

    /// <summary>The body of <paramref name="value"/> in schema version <paramref name="version"/> (see <see cref="CanWrite"/>).</summary>
    public byte[] Serialize(T value, int version)
    {
        if (version == SchemaVersion)
        {
            return Serialize(value);
        }
        var body = JsonSerializer.SerializeToNode(value, Json)!.AsObject();
        for (var at = SchemaVersion; at > version; at--)
        {
            body = _downcast!(at - 1, body);
        }
        return System.Text.Encoding.UTF8.GetBytes(body.ToJsonString());
    }

    /// <summary>The record's <c>public static JsonObject {name}(int version, JsonObject body)</c>, when it has one.</summary>
    private static Func<int, JsonObject, JsonObject>? Converter(Type type, string name) =>
        type.GetMethod(name, BindingFlags.Public | BindingFlags.Static, [typeof(int), typeof(JsonObject)]) is { } method && method.ReturnType == typeof(JsonObject)
            ? method.CreateDelegate<Func<int, JsonObject, JsonObject>>()
            : null;

    public byte[] Serialize(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Json);

    /// <summary>The type's own rules class when it names one, else the rules its attributes declare (the id and CreatedAt required).</summary>
    private AttributeRules.Check<T> RulesOf(Type type)
    {
        var rulesType = type.GetCustomAttribute<DataObjectAttribute>()!.Rules;
        if (rulesType is not null)
        {
            var validate = rulesType.GetMethod("Validate", BindingFlags.Public | BindingFlags.Static,
                    [typeof(T), typeof(string), typeof(Dictionary<string, List<string>>)])
                ?? throw new InvalidOperationException(
                    $"{type.Name}: its rules class {rulesType.Name} has no public static void Validate({type.Name}? value, string path, Dictionary<string, List<string>> errors).");
            return validate.CreateDelegate<AttributeRules.Check<T>>();
        }
        var members = AttributeRules.For<T>(Members);
        var (idName, createdAtName) = (Id.JsonName, CreatedAt?.JsonName);
        return (value, path, errors) =>
        {
            if (value is null)
            {
                AttributeRules.Fail(errors, path, "", _missing);
                return;
            }
            // The API fills both in before validating; on the queue both must be there.
            if (_id(value) == Guid.Empty)
            {
                AttributeRules.Fail(errors, path, idName, "The value is required.");
            }
            members(value, path, errors);
            if (_createdAt is not null && _createdAt(value) == default)
            {
                AttributeRules.Fail(errors, path, createdAtName!, "The value is required.");
            }
        };
    }
}
