using System.ComponentModel.DataAnnotations;
using System.ComponentModel.DataAnnotations.Schema;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Envio.Contracts.DataObjects;

/// <summary>What a property of a data object is: a value, an object flattened into its owner, or a child collection.</summary>
public enum MemberKind { Value, Nested, Collection }

/// <summary>
/// One property of a data object, read once at start-up from the record: its JSON name, its column name, whether it
/// may be null, its declared limits, and (for an object or a collection) the properties inside. The validator, the
/// stores' table maps and the API's examples are all built from this one description.
/// </summary>
public sealed class DataObjectMember
{
    private static readonly NullabilityInfoContext Nullability = new();

    private DataObjectMember(PropertyInfo property, MemberKind kind, Type valueType, IReadOnlyList<DataObjectMember> members)
    {
        Property = property;
        Kind = kind;
        ValueType = valueType;
        Members = members;
        JsonName = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);
        ColumnName = property.GetCustomAttribute<ColumnAttribute>()?.Name ?? Naming.SnakeCase(property.Name);
        var nullability = Nullability.Create(property);
        IsNullable = Nullable.GetUnderlyingType(property.PropertyType) is not null
            || (!property.PropertyType.IsValueType && nullability.ReadState == NullabilityState.Nullable);
        IsRequired = property.GetCustomAttribute<RequiredAttribute>() is not null || (!IsNullable && !property.PropertyType.IsValueType);
        IsSealed = property.GetCustomAttribute<SealedAttribute>() is not null;
        IsCurrencyCode = property.GetCustomAttribute<CurrencyCodeAttribute>() is not null;
        (MinLength, MaxLength) = Lengths(property, IsCurrencyCode);
        Attributes = [.. property.GetCustomAttributes<ValidationAttribute>(inherit: true)];
    }

    public PropertyInfo Property { get; }

    public string Name => Property.Name;

    public MemberKind Kind { get; }

    /// <summary>A value's type without <see cref="Nullable{T}"/>; an object's type; a collection's element type.</summary>
    public Type ValueType { get; }

    /// <summary>An object's properties, or a collection element's; empty for a value.</summary>
    public IReadOnlyList<DataObjectMember> Members { get; }

    /// <summary>The name in JSON (<c>unitPrice</c>), which is also the key of its errors.</summary>
    public string JsonName { get; }

    /// <summary>The column's name without an owner's prefix (<c>unit_price</c>; <c>[Column("…")]</c> overrides it).</summary>
    public string ColumnName { get; }

    /// <summary>Whether the property may be null (a nullable reference or <see cref="Nullable{T}"/>).</summary>
    public bool IsNullable { get; }

    /// <summary>Whether a value must be there: a non-nullable reference, or <see cref="RequiredAttribute"/> (then not the default).</summary>
    public bool IsRequired { get; }

    public bool IsSealed { get; }

    public bool IsCurrencyCode { get; }

    /// <summary>Text: characters; a collection: elements. From MinLength, MaxLength, StringLength or Length.</summary>
    public int? MinLength { get; }

    public int? MaxLength { get; }

    /// <summary>A fixed-length text (<see cref="MinLength"/> = <see cref="MaxLength"/>): stored as <c>char(n)</c>.</summary>
    public bool IsFixedLength => ValueType == typeof(string) && MinLength is { } min && min == MaxLength && !IsSealed;

    public IReadOnlyList<ValidationAttribute> Attributes { get; }

    /// <summary>The value types a property may have (besides objects and collections of objects).</summary>
    public static bool IsSupportedValue(Type type) =>
        type == typeof(string) || type == typeof(Guid) || type == typeof(decimal) || type == typeof(int) || type == typeof(long)
        || type == typeof(short) || type == typeof(bool) || type == typeof(DateTimeOffset) || type == typeof(DateOnly) || type.IsEnum;

    /// <summary>
    /// The members of <paramref name="type"/> (a data object, an object inside one, or a child collection's element).
    /// Refuses, naming the type and property, what Envio cannot store: an unsupported value type, a collection inside
    /// a child or inside an object (one level of child tables), a collection of values, a cycle.
    /// </summary>
    public static IReadOnlyList<DataObjectMember> Of(Type type, string where, bool collectionsAllowed, HashSet<Type>? visiting = null)
    {
        visiting ??= [];
        if (!visiting.Add(type))
        {
            throw new InvalidOperationException($"{where}: {type.Name} contains itself; a data object is a tree of at most two levels.");
        }
        var members = new List<DataObjectMember>();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.GetCustomAttribute<JsonIgnoreAttribute>() is not null || property.GetMethod is null)
            {
                continue;
            }
            var path = $"{where}.{property.Name}";
            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (IsSupportedValue(propertyType))
            {
                members.Add(new DataObjectMember(property, MemberKind.Value, propertyType, []));
            }
            else if (ElementOf(propertyType) is { } element)
            {
                if (!collectionsAllowed)
                {
                    throw new InvalidOperationException(
                        $"{path}: a collection inside a child collection or inside an object. Envio stores one level of child " +
                        "collections, each as a table of its own keyed by the parent's id and a line number: flatten it, or make it a data object of its own.");
                }
                if (IsSupportedValue(Nullable.GetUnderlyingType(element) ?? element) || !element.IsClass)
                {
                    throw new InvalidOperationException(
                        $"{path}: a collection of {element.Name} values. A child collection holds records (its rows); wrap the value in one.");
                }
                var member = new DataObjectMember(property, MemberKind.Collection, element, Of(element, $"{path}[]", collectionsAllowed: false, visiting));
                if (member.MaxLength is null)
                {
                    throw new InvalidOperationException(
                        $"{path}: a child collection needs [MaxLength(n)]: the API bounds every array before it reads a body.");
                }
                members.Add(member);
            }
            else if (propertyType.IsClass && propertyType != typeof(object))
            {
                members.Add(new DataObjectMember(property, MemberKind.Nested, propertyType, Of(propertyType, path, collectionsAllowed: false, visiting)));
            }
            else
            {
                throw new InvalidOperationException(
                    $"{path}: a {property.PropertyType.Name} cannot be stored. Use text, a Guid, a number (int, long, short, decimal), " +
                    "a bool, a DateTimeOffset, a DateOnly, an enum, an object or one collection of records.");
            }
        }
        foreach (var member in members.Where(m => m.IsSealed && m.ValueType != typeof(string)))
        {
            throw new InvalidOperationException($"{where}.{member.Name}: [Sealed] applies to text only.");
        }
        visiting.Remove(type);
        return members;
    }

    private static Type? ElementOf(Type type)
    {
        if (type == typeof(string))
        {
            return null;
        }
        if (type.IsArray)
        {
            return type.GetElementType();
        }
        return type.IsGenericType && type.GetGenericTypeDefinition() is var definition
            && (definition == typeof(IReadOnlyList<>) || definition == typeof(List<>) || definition == typeof(IList<>)
                || definition == typeof(IReadOnlyCollection<>) || definition == typeof(ICollection<>) || definition == typeof(IEnumerable<>))
            ? type.GetGenericArguments()[0]
            : null;
    }

    private static (int? Min, int? Max) Lengths(PropertyInfo property, bool currency)
    {
        if (currency)
        {
            return (3, 3);
        }
        int? min = null, max = null;
        foreach (var attribute in property.GetCustomAttributes(inherit: true))
        {
            switch (attribute)
            {
                case MaxLengthAttribute a when a.Length > 0:
                    max = a.Length;
                    break;
                case MinLengthAttribute a:
                    min = a.Length;
                    break;
                case StringLengthAttribute a:
                    max = a.MaximumLength;
                    min = a.MinimumLength > 0 ? a.MinimumLength : min;
                    break;
                case LengthAttribute a:
                    (min, max) = (a.MinimumLength, a.MaximumLength);
                    break;
            }
        }
        return (min, max);
    }
}

/// <summary>The names Envio derives from C# names.</summary>
public static class Naming
{
    /// <summary><c>UnitPrice</c> → <c>unit_price</c>, <c>OrderId</c> → <c>order_id</c>, <c>IBAN</c> → <c>iban</c>.</summary>
    public static string SnakeCase(string name) => JsonNamingPolicy.SnakeCaseLower.ConvertName(name);

    /// <summary><c>credit-note</c> → <c>CreditNote</c>.</summary>
    public static string PascalCase(string kebab) =>
        string.Concat(kebab.Split('-').Select(word => char.ToUpperInvariant(word[0]) + word[1..]));

    /// <summary><c>credit-note</c> → <c>creditNote</c>.</summary>
    public static string CamelCase(string kebab) => JsonNamingPolicy.CamelCase.ConvertName(PascalCase(kebab));
}
