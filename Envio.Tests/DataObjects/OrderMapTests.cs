using Envio.ConsumerService.Persistence.Postgres;
using Envio.ConsumerService.Persistence.SqlServer;
using Envio.Tests.Support;

namespace Envio.Tests.DataObjects;

/// <summary>
/// The map generated for Order writes exactly what the hand-written order stores wrote before data objects were generic:
/// the same statements (compared with runs of whitespace as one space), the same columns in the same order, and the same
/// SQL Server table types as migrations 0001 and 0002 created. The expected texts are copied from that code.
/// </summary>
public sealed class OrderMapTests
{
    private static readonly PostgresSql Postgres = PostgresSql.Of(TestStore.Maps.For(Orders.Type));
    private static readonly SqlServerSql SqlServer = SqlServerSql.Of(TestStore.Maps.For(Orders.Type));

    public static TheoryData<string, string, string> Statements() => new()
    {
        { "PostgreSQL: create staging", Postgres.CreateStaging, CreateStaging },
        { "PostgreSQL: copy orders into staging", Postgres.CopyStaging, CopyOrders },
        { "PostgreSQL: copy items into staging", Postgres.ChildCopyStaging.Single(), CopyItems },
        { "PostgreSQL: insert new", Postgres.InsertNew, InsertNew },
        { "PostgreSQL: stored clients", Postgres.SelectStoredClients, SelectStoredClients },
        { "PostgreSQL: copy orders", Postgres.CopyDirect, CopyOrdersDirect },
        { "PostgreSQL: copy items", Postgres.ChildCopyDirect.Single(), CopyItemsDirect },
        { "SQL Server: insert new", SqlServer.InsertNew, SqlServerInsertNew },
        { "SQL Server: order_row_with_client", SqlServerSql.CreateTypeStatement(SqlServer.RowTypes[0].Name, SqlServer.RowTypes[0].Columns), OrderRowType },
        { "SQL Server: order_item_row", SqlServerSql.CreateTypeStatement(SqlServer.RowTypes[1].Name, SqlServer.RowTypes[1].Columns), OrderItemRowType },
    };

    [Theory]
    [MemberData(nameof(Statements))]
    public void The_generated_statement_is_the_hand_written_one(string name, string generated, string handWritten) =>
        Assert.True(Normalized(generated) == Normalized(handWritten), $"{name}:\n{Normalized(generated)}\n  differs from\n{Normalized(handWritten)}");

    [Fact]
    public void The_table_types_are_the_ones_orders_have_always_used() =>
        Assert.Equal(["order_row_with_client", "order_item_row"], SqlServer.RowTypes.Select(t => t.Name));

    private static string Normalized(string sql) =>
        string.Join(" ", sql.Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries)).Replace("( ", "(", StringComparison.Ordinal)
            .Replace(" )", ")", StringComparison.Ordinal).Replace(" ,", ",", StringComparison.Ordinal).TrimEnd(';');

    private const string CreateStaging = """
        CREATE TEMP TABLE staging_orders (
            order_id uuid NOT NULL, customer_name varchar(200) NOT NULL, customer_email bytea NOT NULL,
            customer_document bytea NOT NULL, currency char(3) NOT NULL, total numeric(19,4) NOT NULL,
            created_at timestamptz NOT NULL, correlation_id varchar(128) NULL, client_id varchar(256) NULL
        ) ON COMMIT DROP;
        CREATE TEMP TABLE staging_items (
            order_id uuid NOT NULL, line_no integer NOT NULL, sku varchar(64) NOT NULL,
            quantity integer NOT NULL, unit_price numeric(19,4) NOT NULL
        ) ON COMMIT DROP;

        """;

    private const string CopyOrders = """
        COPY staging_orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id)
        FROM STDIN (FORMAT BINARY)

        """;

    private const string CopyItems = "COPY staging_items (order_id, line_no, sku, quantity, unit_price) FROM STDIN (FORMAT BINARY)";

    private const string InsertNew = """
        WITH inserted AS (
            INSERT INTO orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id, received_by)
            SELECT DISTINCT ON (order_id) order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id, $1
            FROM staging_orders
            ORDER BY order_id
            ON CONFLICT (order_id) DO NOTHING
            RETURNING order_id
        ), items AS (
            INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price)
            SELECT s.order_id, s.line_no, s.sku, s.quantity, s.unit_price
            FROM staging_items s JOIN inserted USING (order_id)
            RETURNING 1
        )
        SELECT count(*) FROM inserted

        """;

    private const string SelectStoredClients = """
        SELECT o.order_id, o.client_id
        FROM orders o JOIN staging_orders s USING (order_id)

        """;

    private const string CopyOrdersDirect = """
        COPY orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id, received_by)
        FROM STDIN (FORMAT BINARY)

        """;

    private const string CopyItemsDirect = "COPY order_items (order_id, line_no, sku, quantity, unit_price) FROM STDIN (FORMAT BINARY)";

    private const string SqlServerInsertNew = """
        DECLARE @inserted TABLE (order_id uniqueidentifier NOT NULL PRIMARY KEY);

        INSERT INTO dbo.orders (order_id, customer_name, customer_email, customer_document, currency, total, created_at, correlation_id, client_id, received_by)
        OUTPUT inserted.order_id INTO @inserted (order_id)
        SELECT o.order_id, o.customer_name, o.customer_email, o.customer_document, o.currency, o.total, o.created_at, o.correlation_id, o.client_id, @received_by
        FROM (
            SELECT r.*, ROW_NUMBER() OVER (PARTITION BY r.order_id ORDER BY r.order_id) AS copy_no
            FROM @orders AS r
        ) AS o
        WHERE o.copy_no = 1
          AND NOT EXISTS (SELECT 1 FROM dbo.orders AS stored WITH (UPDLOCK, HOLDLOCK) WHERE stored.order_id = o.order_id);

        INSERT INTO dbo.order_items (order_id, line_no, sku, quantity, unit_price)
        SELECT i.order_id, i.line_no, i.sku, i.quantity, i.unit_price
        FROM @items AS i
        JOIN @inserted AS n ON n.order_id = i.order_id;

        SELECT COUNT(*) FROM @inserted;

        SELECT stored.order_id, stored.client_id
        FROM dbo.orders AS stored
        WHERE EXISTS (SELECT 1 FROM @orders AS r WHERE r.order_id = stored.order_id);

        """;

    private const string OrderRowType = """
        CREATE TYPE dbo.order_row_with_client AS TABLE (
            order_id          uniqueidentifier  NOT NULL,
            customer_name     nvarchar(4000)    NOT NULL,
            customer_email    varbinary(max)    NOT NULL,
            customer_document varbinary(max)    NOT NULL,
            currency          nvarchar(4000)    NOT NULL,
            total             decimal(19,4)     NOT NULL,
            created_at        datetimeoffset(7) NOT NULL,
            correlation_id    nvarchar(4000)    NULL,
            client_id         nvarchar(4000)    NULL
        );
        """;

    private const string OrderItemRowType = """
        CREATE TYPE dbo.order_item_row AS TABLE (
            order_id   uniqueidentifier NOT NULL,
            line_no    int              NOT NULL,
            sku        nvarchar(4000)   NOT NULL,
            quantity   int              NOT NULL,
            unit_price decimal(19,4)    NOT NULL
        );
        """;
}
