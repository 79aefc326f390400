using Envio.Contracts.DataObjects;

namespace Envio.ConsumerService.Persistence.Mapping;

/// <summary>
/// Builds the columns of one table from the members of the object each row holds (<typeparamref name="TSource"/>: the
/// data object, or a child collection's element): a value is a column, an object's values are columns with its name as
/// prefix (<c>customer_name</c>), a sealed text is a bytes column read from the row's sealed values. Getters are
/// composed once here; a row's value is then one delegate call per level.
/// </summary>
internal sealed class ColumnsBuilder<TRow, TSource>(Func<TRow, TSource> sourceOf, Func<TRow, byte[]?[]> sealedOf) where TSource : class
{
    public List<Column<TRow>> Columns { get; } = [];

    /// <summary>The sealed columns, in the order of a row's sealed values: name and the clear text's getter.</summary>
    public List<(string Column, Func<TSource, string?> Get)> Sealed { get; } = [];

    /// <summary>The child collections met on the way (the data object's own members only).</summary>
    public List<DataObjectMember> Collections { get; } = [];

    public ColumnsBuilder<TRow, TSource> AddMembers(IReadOnlyList<DataObjectMember> members)
    {
        Add<TSource>(source => source, ownerMayBeNull: false, members, prefix: "");
        return this;
    }

    public void Add(Column<TRow> column) => Columns.Add(column);

    private void Add<TOwner>(Func<TSource, TOwner?> owner, bool ownerMayBeNull, IReadOnlyList<DataObjectMember> members, string prefix) where TOwner : class
    {
        foreach (var member in members)
        {
            var name = prefix + member.ColumnName;
            switch (member.Kind)
            {
                case MemberKind.Nested:
                    Accessors.Invoke<object?>(typeof(ColumnsBuilder<TRow, TSource>), nameof(AddNested), [typeof(TOwner), member.ValueType], this,
                        owner, ownerMayBeNull, member, name + "_");
                    break;
                case MemberKind.Collection:
                    Collections.Add(member);
                    break;
                default:
                    AddValue(owner, ownerMayBeNull, member, name);
                    break;
            }
        }
    }

    private object? AddNested<TOwner, TNested>(Func<TSource, TOwner?> owner, bool ownerMayBeNull, DataObjectMember member, string prefix)
        where TOwner : class where TNested : class
    {
        var get = Accessors.Getter<TOwner, TNested?>(member.Property);
        Add<TNested>(source => owner(source) is { } value ? get(value) : null, ownerMayBeNull || member.IsNullable, member.Members, prefix);
        return null;
    }

    private void AddValue<TOwner>(Func<TSource, TOwner?> owner, bool ownerMayBeNull, DataObjectMember member, string name) where TOwner : class
    {
        var nullable = ownerMayBeNull || member.IsNullable;
        var type = member.ValueType;
        if (member.IsSealed)
        {
            var get = Accessors.Getter<TOwner, string?>(member.Property);
            var index = Sealed.Count;
            Sealed.Add((name, source => owner(source) is { } value ? get(value) : null));
            Columns.Add(new Column<TRow, byte[]?>(new ColumnShape(name, ColumnType.Bytes, nullable), row => sealedOf(row)[index]));
        }
        else if (type == typeof(string))
        {
            var get = Accessors.Getter<TOwner, string?>(member.Property);
            var shape = new ColumnShape(name, member.IsFixedLength ? ColumnType.FixedText : ColumnType.Text, nullable, member.MaxLength);
            Columns.Add(new Column<TRow, string?>(shape, row => owner(sourceOf(row)) is { } value ? get(value) : null));
        }
        else if (type.IsEnum)
        {
            Columns.Add(Accessors.Invoke<Column<TRow>>(typeof(ColumnsBuilder<TRow, TSource>), nameof(EnumColumn), [typeof(TOwner), type], this,
                owner, member, name, nullable));
        }
        else
        {
            var method = Nullable.GetUnderlyingType(member.Property.PropertyType) is not null || nullable ? nameof(NullableColumn) : nameof(StructColumn);
            Columns.Add(Accessors.Invoke<Column<TRow>>(typeof(ColumnsBuilder<TRow, TSource>), method, [typeof(TOwner), type], this,
                owner, member, name));
        }
    }

    private Column<TRow> StructColumn<TOwner, TValue>(Func<TSource, TOwner?> owner, DataObjectMember member, string name)
        where TOwner : class where TValue : struct
    {
        var get = Accessors.Getter<TOwner, TValue>(member.Property);
        return new Column<TRow, TValue>(new ColumnShape(name, TypeOf(typeof(TValue)), Nullable: false), row => get(owner(sourceOf(row))!));
    }

    private Column<TRow> NullableColumn<TOwner, TValue>(Func<TSource, TOwner?> owner, DataObjectMember member, string name)
        where TOwner : class where TValue : struct
    {
        Func<TRow, TValue?> value;
        if (Nullable.GetUnderlyingType(member.Property.PropertyType) is not null)
        {
            var get = Accessors.Getter<TOwner, TValue?>(member.Property);
            value = row => owner(sourceOf(row)) is { } o ? get(o) : null;
        }
        else
        {
            var get = Accessors.Getter<TOwner, TValue>(member.Property);
            value = row => owner(sourceOf(row)) is { } o ? get(o) : null;
        }
        return new Column<TRow, TValue?>(new ColumnShape(name, TypeOf(typeof(TValue)), Nullable: true), value);
    }

    /// <summary>An enum is stored as its name in JSON (what clients send and read), as text.</summary>
    private Column<TRow> EnumColumn<TOwner, TEnum>(Func<TSource, TOwner?> owner, DataObjectMember member, string name, bool nullable)
        where TOwner : class where TEnum : struct, Enum
    {
        var names = AttributeRules.EnumNames(typeof(TEnum)).ToDictionary(pair => (TEnum)pair.Key, pair => pair.Value);
        var shape = new ColumnShape(name, ColumnType.Text, nullable, member.MaxLength ?? names.Values.Max(n => n.Length));
        if (Nullable.GetUnderlyingType(member.Property.PropertyType) is not null)
        {
            var get = Accessors.Getter<TOwner, TEnum?>(member.Property);
            return new Column<TRow, string?>(shape, row => owner(sourceOf(row)) is { } o && get(o) is { } v ? names.GetValueOrDefault(v) : null);
        }
        var getValue = Accessors.Getter<TOwner, TEnum>(member.Property);
        return new Column<TRow, string?>(shape, row => owner(sourceOf(row)) is { } o ? names.GetValueOrDefault(getValue(o)) : null);
    }

    private static ColumnType TypeOf(Type type) =>
        type == typeof(Guid) ? ColumnType.Uuid
        : type == typeof(decimal) ? ColumnType.Numeric
        : type == typeof(short) ? ColumnType.Small
        : type == typeof(int) ? ColumnType.Whole
        : type == typeof(long) ? ColumnType.Big
        : type == typeof(bool) ? ColumnType.Boolean
        : type == typeof(DateTimeOffset) ? ColumnType.Timestamp
        : type == typeof(DateOnly) ? ColumnType.Date
        : throw new InvalidOperationException($"No column type for {type.Name}.");
}
