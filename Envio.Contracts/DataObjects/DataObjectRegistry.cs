using System.Collections;
using System.Collections.Frozen;

namespace Envio.Contracts.DataObjects;

/// <summary>The registered types of data objects, in registration order, found by name or by wire type.</summary>
public sealed class DataObjectRegistry : IReadOnlyList<DataObjectType>
{
    private readonly DataObjectType[] _types;
    private readonly FrozenDictionary<string, DataObjectType> _byWireType;
    private readonly FrozenDictionary<string, DataObjectType> _byName;

    public DataObjectRegistry(params DataObjectType[] types)
    {
        _types = types;
        foreach (var (what, key) in new (string, Func<DataObjectType, string>)[] { ("name", t => t.Name), ("plural", t => t.Plural), ("table", t => t.Table) })
        {
            if (types.GroupBy(key).FirstOrDefault(g => g.Count() > 1) is { } clash)
            {
                throw new InvalidOperationException($"Two data objects have the {what} '{clash.Key}': {string.Join(", ", clash.Select(t => t.ClrType.Name))}.");
            }
        }
        _byWireType = types.ToFrozenDictionary(t => t.WireType, StringComparer.Ordinal);
        _byName = types.ToFrozenDictionary(t => t.Name, StringComparer.Ordinal);
    }

    public int Count => _types.Length;

    public DataObjectType this[int index] => _types[index];

    /// <summary>The type a message says it carries (<c>envio.order</c>), or null for one this build does not know.</summary>
    public DataObjectType? ByWireType(string? wireType) => wireType is not null && _byWireType.TryGetValue(wireType, out var type) ? type : null;

    /// <summary>The type named <paramref name="name"/> (<c>order</c>), or null.</summary>
    public DataObjectType? ByName(string? name) => name is not null && _byName.TryGetValue(name, out var type) ? type : null;

    public IEnumerator<DataObjectType> GetEnumerator() => ((IEnumerable<DataObjectType>)_types).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
