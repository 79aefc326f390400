using Envio.ConsumerService.Persistence.Mapping;
using Envio.Contracts.DataObjects;
using Npgsql;
using NpgsqlTypes;

namespace Envio.ConsumerService.Persistence.Postgres;

/// <summary>Writes one column of a row into a binary COPY.</summary>
internal delegate Task CopyRow<in TRow>(NpgsqlBinaryImporter writer, TRow row, CancellationToken cancellationToken);

/// <summary>
/// A column's COPY writer, typed by its values and made once at start-up: a row's value is one getter call and one
/// typed <c>WriteAsync&lt;T&gt;</c>, with no boxing. Instants go as UTC (what <c>timestamptz</c> takes from Npgsql).
/// </summary>
internal sealed class CopyColumns<TRow> : IColumnVisitor<TRow, CopyRow<TRow>>
{
    public static readonly CopyColumns<TRow> Instance = new();

    public CopyRow<TRow> Visit<TValue>(Column<TRow, TValue> column)
    {
        var type = DbTypeOf(column.Shape.Type);
        if (typeof(TValue) == typeof(DateTimeOffset))
        {
            var get = (Func<TRow, DateTimeOffset>)(object)column.Get;
            return (writer, row, ct) => writer.WriteAsync(get(row).UtcDateTime, type, ct);
        }
        if (typeof(TValue) == typeof(DateTimeOffset?))
        {
            var get = (Func<TRow, DateTimeOffset?>)(object)column.Get;
            return (writer, row, ct) => get(row) is { } value ? writer.WriteAsync(value.UtcDateTime, type, ct) : writer.WriteNullAsync(ct);
        }
        if (Nullable.GetUnderlyingType(typeof(TValue)) is { } underlying)
        {
            return Accessors.Invoke<CopyRow<TRow>>(typeof(CopyColumns<TRow>), nameof(NullableValue), [underlying], null, column, type);
        }
        var getValue = column.Get;
        return (writer, row, ct) => getValue(row) is { } value ? writer.WriteAsync(value, type, ct) : writer.WriteNullAsync(ct);
    }

    private static CopyRow<TRow> NullableValue<TValue>(Column<TRow, TValue?> column, NpgsqlDbType type) where TValue : struct
    {
        var get = column.Get;
        return (writer, row, ct) => get(row) is { } value ? writer.WriteAsync(value, type, ct) : writer.WriteNullAsync(ct);
    }

    private static NpgsqlDbType DbTypeOf(ColumnType type) => type switch
    {
        ColumnType.Uuid => NpgsqlDbType.Uuid,
        ColumnType.Text => NpgsqlDbType.Varchar,
        ColumnType.FixedText => NpgsqlDbType.Char,
        ColumnType.Bytes => NpgsqlDbType.Bytea,
        ColumnType.Numeric => NpgsqlDbType.Numeric,
        ColumnType.Small => NpgsqlDbType.Smallint,
        ColumnType.Whole => NpgsqlDbType.Integer,
        ColumnType.Big => NpgsqlDbType.Bigint,
        ColumnType.Boolean => NpgsqlDbType.Boolean,
        ColumnType.Timestamp => NpgsqlDbType.TimestampTz,
        ColumnType.Date => NpgsqlDbType.Date,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };
}
