using System.Data;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.DataObjects;
using Microsoft.Data.SqlClient.Server;

namespace Envio.ConsumerService.Persistence.SqlServer;

/// <summary>
/// A table type's columns (its <see cref="SqlMetaData"/>, text as wide as <see cref="SqlServerSql.TextWidth"/>) and a
/// typed setter per column, made once: a batch's rows become the <see cref="SqlDataRecord"/>s of a table-valued parameter.
/// </summary>
internal sealed class RecordColumns<TRow>
{
    private readonly SqlMetaData[] _shape;
    private readonly Action<SqlDataRecord, int, TRow>[] _setters;

    public RecordColumns(IReadOnlyList<Column<TRow>> columns)
    {
        _shape = [.. columns.Select(c => MetaDataOf(c.Shape))];
        _setters = [.. columns.Select(c => c.Accept(Setters.Instance))];
    }

    public IReadOnlyList<SqlMetaData> Shape => _shape;

    // A table-valued parameter must have at least one row or be null: an empty batch sends null.
    public IEnumerable<SqlDataRecord>? Records(List<TRow> rows) => rows.Count == 0 ? null : rows.Select(row =>
    {
        var record = new SqlDataRecord(_shape);
        for (var i = 0; i < _setters.Length; i++)
        {
            _setters[i](record, i, row);
        }
        return record;
    });

    private static SqlMetaData MetaDataOf(ColumnShape column) => column.Type switch
    {
        ColumnType.Uuid => new(column.Name, SqlDbType.UniqueIdentifier),
        ColumnType.Text or ColumnType.FixedText => new(column.Name, SqlDbType.NVarChar,
            column.MaxLength is { } max and <= SqlServerSql.TextWidth ? SqlServerSql.TextWidth : SqlMetaData.Max),
        ColumnType.Bytes => new(column.Name, SqlDbType.VarBinary, SqlMetaData.Max),
        ColumnType.Numeric => new(column.Name, SqlDbType.Decimal, ColumnShape.DecimalPrecision, ColumnShape.DecimalScale),
        ColumnType.Small => new(column.Name, SqlDbType.SmallInt),
        ColumnType.Whole => new(column.Name, SqlDbType.Int),
        ColumnType.Big => new(column.Name, SqlDbType.BigInt),
        ColumnType.Boolean => new(column.Name, SqlDbType.Bit),
        ColumnType.Timestamp => new(column.Name, SqlDbType.DateTimeOffset),
        ColumnType.Date => new(column.Name, SqlDbType.Date),
        _ => throw new ArgumentOutOfRangeException(nameof(column), column.Type, null),
    };

    private sealed class Setters : IColumnVisitor<TRow, Action<SqlDataRecord, int, TRow>>
    {
        public static readonly Setters Instance = new();

        public Action<SqlDataRecord, int, TRow> Visit<TValue>(Column<TRow, TValue> column) =>
            Nullable.GetUnderlyingType(typeof(TValue)) is { } underlying
                ? Accessors.Invoke<Action<SqlDataRecord, int, TRow>>(typeof(Setters), nameof(NullableSetter), [underlying], null, column)
                : Setter(column.Get, SetterOf<TValue>(column.Shape.Type));

        private static Action<SqlDataRecord, int, TRow> NullableSetter<TValue>(Column<TRow, TValue?> column) where TValue : struct
        {
            var (get, set) = (column.Get, SetterOf<TValue>(column.Shape.Type));
            return (record, i, row) =>
            {
                if (get(row) is { } value)
                {
                    set(record, i, value);
                }
                else
                {
                    record.SetDBNull(i);
                }
            };
        }

        private static Action<SqlDataRecord, int, TRow> Setter<TValue>(Func<TRow, TValue> get, Action<SqlDataRecord, int, TValue> set) =>
            (record, i, row) =>
            {
                if (get(row) is { } value)
                {
                    set(record, i, value);
                }
                else
                {
                    record.SetDBNull(i);
                }
            };

        private static Action<SqlDataRecord, int, TValue> SetterOf<TValue>(ColumnType type) => (Action<SqlDataRecord, int, TValue>)(object)(type switch
        {
            ColumnType.Uuid => (Delegate)(Action<SqlDataRecord, int, Guid>)((r, i, v) => r.SetGuid(i, v)),
            ColumnType.Text or ColumnType.FixedText => (Delegate)(Action<SqlDataRecord, int, string>)((r, i, v) => r.SetString(i, v)),
            ColumnType.Bytes => (Delegate)(Action<SqlDataRecord, int, byte[]>)((r, i, v) => r.SetBytes(i, 0, v, 0, v.Length)),
            ColumnType.Numeric => (Delegate)(Action<SqlDataRecord, int, decimal>)((r, i, v) => r.SetDecimal(i, v)),
            ColumnType.Small => (Delegate)(Action<SqlDataRecord, int, short>)((r, i, v) => r.SetInt16(i, v)),
            ColumnType.Whole => (Delegate)(Action<SqlDataRecord, int, int>)((r, i, v) => r.SetInt32(i, v)),
            ColumnType.Big => (Delegate)(Action<SqlDataRecord, int, long>)((r, i, v) => r.SetInt64(i, v)),
            ColumnType.Boolean => (Delegate)(Action<SqlDataRecord, int, bool>)((r, i, v) => r.SetBoolean(i, v)),
            ColumnType.Timestamp => (Delegate)(Action<SqlDataRecord, int, DateTimeOffset>)((r, i, v) => r.SetDateTimeOffset(i, v)),
            ColumnType.Date => (Delegate)(Action<SqlDataRecord, int, DateOnly>)((r, i, v) => r.SetDateTime(i, v.ToDateTime(TimeOnly.MinValue))),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        });
    }
}
