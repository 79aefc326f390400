using System.Collections;
using System.Data.Common;
using Envio.ConsumerService.Persistence.Mapping;

namespace Envio.ConsumerService.Persistence.SqlServer;

/// <summary>
/// A batch's rows as SqlBulkCopy reads them: by column name, one value at a time (boxed, as SqlBulkCopy asks for
/// objects). Only what SqlBulkCopy calls is implemented.
/// </summary>
internal sealed class RowReader<TRow>(IReadOnlyList<Column<TRow>> columns, List<TRow> rows) : DbDataReader
{
    private int _index = -1;

    public override int FieldCount => columns.Count;

    public override bool HasRows => rows.Count > 0;

    public override bool IsClosed => false;

    public override int RecordsAffected => -1;

    public override int Depth => 0;

    public override object this[int ordinal] => GetValue(ordinal);

    public override object this[string name] => GetValue(GetOrdinal(name));

    public override bool Read() => ++_index < rows.Count;

    public override bool NextResult() => false;

    public override string GetName(int ordinal) => columns[ordinal].Name;

    public override int GetOrdinal(string name)
    {
        for (var i = 0; i < columns.Count; i++)
        {
            if (string.Equals(columns[i].Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }
        throw new ArgumentOutOfRangeException(nameof(name), name, "No such column.");
    }

    // A date goes as DateTime, which every SqlClient version converts into a date column.
    public override object GetValue(int ordinal) => columns[ordinal].BoxedValueOf(rows[_index]) switch
    {
        null => DBNull.Value,
        DateOnly date => date.ToDateTime(TimeOnly.MinValue),
        var value => value,
    };

    public override int GetValues(object[] values)
    {
        var count = Math.Min(values.Length, columns.Count);
        for (var i = 0; i < count; i++)
        {
            values[i] = GetValue(i);
        }
        return count;
    }

    public override bool IsDBNull(int ordinal) => columns[ordinal].BoxedValueOf(rows[_index]) is null;

    public override Type GetFieldType(int ordinal) => columns[ordinal].Shape.Type switch
    {
        ColumnType.Uuid => typeof(Guid),
        ColumnType.Text or ColumnType.FixedText => typeof(string),
        ColumnType.Bytes => typeof(byte[]),
        ColumnType.Numeric => typeof(decimal),
        ColumnType.Small => typeof(short),
        ColumnType.Whole => typeof(int),
        ColumnType.Big => typeof(long),
        ColumnType.Boolean => typeof(bool),
        ColumnType.Timestamp => typeof(DateTimeOffset),
        _ => typeof(DateTime),
    };

    public override string GetDataTypeName(int ordinal) => GetFieldType(ordinal).Name;

    public override IEnumerator GetEnumerator() => throw new NotSupportedException();

    public override bool GetBoolean(int ordinal) => (bool)GetValue(ordinal);

    public override byte GetByte(int ordinal) => throw new NotSupportedException();

    public override long GetBytes(int ordinal, long dataOffset, byte[]? buffer, int bufferOffset, int length) => throw new NotSupportedException();

    public override char GetChar(int ordinal) => throw new NotSupportedException();

    public override long GetChars(int ordinal, long dataOffset, char[]? buffer, int bufferOffset, int length) => throw new NotSupportedException();

    public override DateTime GetDateTime(int ordinal) => (DateTime)GetValue(ordinal);

    public override decimal GetDecimal(int ordinal) => (decimal)GetValue(ordinal);

    public override double GetDouble(int ordinal) => throw new NotSupportedException();

    public override float GetFloat(int ordinal) => throw new NotSupportedException();

    public override Guid GetGuid(int ordinal) => (Guid)GetValue(ordinal);

    public override short GetInt16(int ordinal) => (short)GetValue(ordinal);

    public override int GetInt32(int ordinal) => (int)GetValue(ordinal);

    public override long GetInt64(int ordinal) => (long)GetValue(ordinal);

    public override string GetString(int ordinal) => (string)GetValue(ordinal);
}
