using System.Text;
using Envio.ConsumerService.Persistence.Mapping;
using Envio.ConsumerService.Persistence.Postgres;
using Envio.ConsumerService.Persistence.SqlServer;
using Envio.Contracts;

namespace Envio.Tests.DataObjects;

/// <summary>
/// A record becomes tables, columns and rules by convention alone: properties are columns, an object is flattened with
/// its name as prefix, one level of collection is a child table keyed by the parent's id and a line number, a sealed
/// text is bytes; what cannot be stored is refused at start with the type and property named.
/// </summary>
public sealed class ConventionTests
{
    [Fact]
    public void A_record_maps_to_columns_an_object_flattened_and_a_collection_as_a_child_table()
    {
        var map = new TableMap<Invoice>(TestTypes.Of<Invoice>());

        Assert.Equal("invoices", map.Table);
        Assert.Equal("invoice_id", map.KeyColumn);
        Assert.Equal(
            ["invoice_id Uuid NOT NULL", "number Text(10) NOT NULL", "bill_to Text(100) NULL", "copies Whole NOT NULL",
             "seller_name Text(50) NOT NULL", "seller_tax_id Bytes NULL", "buyer_name Text(50) NULL", "buyer_tax_id Bytes NULL",
             "kind Text(10) NOT NULL", "created_at Timestamp NOT NULL",
             "correlation_id Text(128) NULL", "client_id Text(256) NULL", "received_by Text(128) NOT NULL"],
            map.Columns.Select(c => Describe(c.Shape)));
        var lines = Assert.Single(map.Children);
        Assert.Equal("invoice_lines", lines.Table);
        Assert.Equal(
            ["invoice_id Uuid NOT NULL", "line_no Whole NOT NULL", "text Text(30) NOT NULL", "amount Numeric NOT NULL", "served_on Date NULL"],
            lines.Shapes.Select(Describe));
        Assert.Equal("invoice_line", lines.ElementName);
    }

    [Fact]
    public void The_generated_sql_for_another_shape_names_its_own_tables_staging_and_table_types()
    {
        var map = new TableMap<Invoice>(TestTypes.Of<Invoice>());
        var postgres = PostgresSql.Of(map);
        var sqlServer = SqlServerSql.Of(map);

        Assert.Contains("CREATE TEMP TABLE staging_invoices (", postgres.CreateStaging, StringComparison.Ordinal);
        Assert.Contains("CREATE TEMP TABLE staging_lines (", postgres.CreateStaging, StringComparison.Ordinal);
        Assert.Contains(", lines AS (", postgres.InsertNew, StringComparison.Ordinal);
        Assert.Equal(["invoice_row", "invoice_line_row"], sqlServer.RowTypes.Select(t => t.Name));
        Assert.Contains("FROM @lines AS i", sqlServer.InsertNew, StringComparison.Ordinal);
        Assert.Contains("served_on date NULL", SqlServerSql.CreateTypeStatement(sqlServer.RowTypes[1].Name, sqlServer.RowTypes[1].Columns), StringComparison.Ordinal);
    }

    [Fact]
    public void Sealed_values_of_an_object_and_its_child_rows_are_bound_to_their_table_column_id_and_line()
    {
        var keys = Security.EncryptionKeysOf.Fresh("k");
        var type = TestTypes.Of<Invoice>();
        var invoice = Invoice(Guid.CreateVersion7()) with { Seller = new Party { Name = "Acme", TaxId = "TAX-1" } };

        var row = Assert.Single(new TableMap<Invoice>(type).RowsOf([new Received<Invoice>(invoice, invoice.InvoiceId, null, null)], keys, "x"));

        var taxId = Assert.Single(row.Sealed, v => v is not null)!;
        Assert.Equal("TAX-1", Envio.Contracts.Security.SensitiveColumns.Open(keys, "invoices", "seller_tax_id", invoice.InvoiceId, taxId));
        Assert.Throws<Envio.Contracts.Security.UndecryptableException>(() =>
            Envio.Contracts.Security.SensitiveColumns.Open(keys, "invoices", "buyer_tax_id", invoice.InvoiceId, taxId));
        Assert.Null(row.Sealed[1]); // the buyer has no tax id: null, not sealed
    }

    [Theory]
    [InlineData(typeof(Deep), "Deep.Lines[].Parts: a collection inside a child collection")]
    [InlineData(typeof(Unbounded), "Unbounded.Lines: a child collection needs [MaxLength(n)]")]
    [InlineData(typeof(Floating), "Floating.Ratio: a Double cannot be stored")]
    [InlineData(typeof(Anonymous), "Anonymous has no id: a Guid property named AnonymousId, or one marked [Key]")]
    [InlineData(typeof(Unreadable), "Unreadable is at schema version 2: it reads the versions before it with a public static JsonObject Upcast")]
    public void What_cannot_be_stored_is_refused_at_start_naming_the_type_and_property(Type type, string message)
    {
        var refused = Assert.ThrowsAny<Exception>(() => typeof(TestTypes).GetMethod(nameof(TestTypes.Of))!.MakeGenericMethod(type).Invoke(null, null));
        Assert.Contains(message, (refused.InnerException ?? refused).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_attribute_rules_report_every_broken_rule_keyed_by_json_path()
    {
        var type = TestTypes.Of<Invoice>();
        var invoice = Invoice(Guid.Empty) with
        {
            Number = " ",
            BillTo = "not an address",
            Copies = 11,
            Seller = new Party { Name = new string('n', 51), TaxId = "T\u0001" },
            Lines = [new InvoiceLine { Text = "ok", Amount = 1.23456m }, null!],
            Kind = (Kind)7,
            CreatedAt = default,
        };
        var errors = new Dictionary<string, List<string>>();

        type.Validate(invoice, "[3]", errors);

        Assert.Equal(new Dictionary<string, string>
        {
            ["[3].invoiceId"] = "The value is required.",
            ["[3].number"] = "The value is required.",
            ["[3].billTo"] = "The email address is not valid.",
            ["[3].copies"] = "The value must be between 1 and 10.",
            ["[3].seller.name"] = "The value must be at most 50 characters long.",
            ["[3].seller.taxId"] = "The value must not contain control characters.",
            ["[3].lines[0].amount"] = "The value has at most 4 decimal places.",
            ["[3].lines[1]"] = "The value is required.",
            ["[3].kind"] = "The value must be one of: standard, creditNote.",
            ["[3].createdAt"] = "The value is required.",
        }, errors.ToDictionary(e => e.Key, e => string.Join(" ", e.Value)));
    }

    [Fact]
    public void Every_registered_type_is_valid_by_its_own_example()
    {
        foreach (var type in DataObjectTypes.Registered)
        {
            Assert.Empty(type.Accept(new ExampleErrors()));
        }
    }

    [Fact]
    public void Two_types_whose_objects_have_the_same_name_get_a_schema_each_in_the_api_reference()
    {
        var ids = Envio.ApiService.Endpoints.DataObjectSchemas.Assign([TestTypes.Of<Invoice>(), TestTypes.Of<Receipt>()]);

        Assert.Equal("Party", ids[typeof(Party)]);
        Assert.Equal("ReceiptParty", ids[typeof(Other.Party)]);
        Assert.Equal("Invoice", ids[typeof(Invoice)]);
        Assert.Equal("Receipt", ids[typeof(Receipt)]);
    }

    [Fact]
    public void No_two_registered_types_share_a_name_a_route_a_queue_or_a_table()
    {
        var registered = DataObjectTypes.Registered;
        Assert.Equal(registered.Count, registered.Select(t => t.Name).Distinct().Count());
        Assert.Equal(registered.Count, registered.Select(t => t.Plural).Distinct().Count());
        Assert.Equal(registered.Count, registered.Select(t => t.Table).Distinct().Count());
        Assert.Throws<InvalidOperationException>(() => new DataObjectRegistry(registered[0], registered[0]));
    }

    private static Invoice Invoice(Guid id) => new()
    {
        InvoiceId = id,
        Number = "INV-1",
        Copies = 1,
        Seller = new Party { Name = "Seller" },
        Lines = [new InvoiceLine { Text = "line", Amount = 1m }],
        Kind = Kind.Standard,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    private static string Describe(ColumnShape shape) =>
        $"{shape.Name} {shape.Type}{(shape.MaxLength is { } max ? $"({max})" : "")} {(shape.Nullable ? "NULL" : "NOT NULL")}";

    private sealed class ExampleErrors : IDataObjectTypeVisitor<Dictionary<string, List<string>>>
    {
        public Dictionary<string, List<string>> Visit<T>(DataObjectType<T> type) where T : class
        {
            var example = type.Deserialize(Encoding.UTF8.GetBytes(Envio.ApiService.Endpoints.DataObjectExamples.Of(type).ToJsonString()));
            var errors = new Dictionary<string, List<string>>();
            type.Validate(example, "", errors);
            return errors;
        }
    }
}
