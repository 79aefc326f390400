using Envio.ConsumerService.Persistence;

namespace Envio.Tests.Persistence;

/// <summary>A service knows which store it talks to from the connection string it is given.</summary>
public sealed class StoreEngineTests
{
    [Theory]
    [InlineData("Host=127.0.0.1;Port=5432;Username=envio;Password=x;Database=enviodb", StoreEngine.Postgres)]
    [InlineData("Server=127.0.0.1,1433;User ID=sa;Password=x;Database=enviodb;Encrypt=Strict", StoreEngine.SqlServer)]
    [InlineData("Data Source=tcp:db.example,1433;Initial Catalog=enviodb;Integrated Security=true", StoreEngine.SqlServer)]
    public void The_engine_is_read_from_the_connection_string(string connectionString, StoreEngine expected) =>
        Assert.Equal(expected, StoreRegistration.DetectEngine("enviodb", connectionString));

    [Fact]
    public void A_missing_connection_string_names_the_setting()
    {
        var error = Assert.Throws<InvalidOperationException>(() => StoreRegistration.DetectEngine("enviodb", null));
        Assert.Contains("ConnectionStrings__enviodb", error.Message);
    }

    [Fact]
    public void An_unrecognised_connection_string_is_refused()
    {
        var error = Assert.Throws<InvalidOperationException>(() => StoreRegistration.DetectEngine("enviodb", "Endpoint=sb://x/"));
        Assert.Contains("neither a PostgreSQL server", error.Message);
    }
}
