using Envio.Contracts.DataObjects;

namespace Envio.ConsumerService.Persistence.Mapping;

/// <summary>Every registered type's <see cref="TableMap{T}"/>, built once at start-up (a type that cannot be mapped stops it).</summary>
public sealed class TableMaps
{
    private readonly Dictionary<DataObjectType, object> _maps;

    public TableMaps(DataObjectRegistry registry)
    {
        _maps = registry.ToDictionary(type => type, type => type.Accept(new Build()));
        Shapes = [.. registry.SelectMany(type => ((IShapes)_maps[type]).Shapes)];
    }

    /// <summary>Every table (and child table) the registered types are stored in, as the schema check expects them.</summary>
    public IReadOnlyList<TableShape> Shapes { get; }

    public TableMap<T> For<T>(DataObjectType<T> type) where T : class => (TableMap<T>)((IShapes)_maps[type]).Map;

    private interface IShapes
    {
        object Map { get; }

        IEnumerable<TableShape> Shapes { get; }
    }

    private sealed class Build : IDataObjectTypeVisitor<object>
    {
        public object Visit<T>(DataObjectType<T> type) where T : class => new Holder<T>(new TableMap<T>(type));
    }

    private sealed class Holder<T>(TableMap<T> map) : IShapes where T : class
    {
        public object Map => map;

        public IEnumerable<TableShape> Shapes =>
        [
            new TableShape(map.Table, [.. map.Columns.Select(c => c.Shape)], map.Type.SqlServerRowType, [.. map.ArrivedColumns.Select(c => c.Shape)]),
            .. map.Children.Select(child => new TableShape(child.Table, child.Shapes, child.ElementName + "_row", child.Shapes)),
        ];
    }
}
