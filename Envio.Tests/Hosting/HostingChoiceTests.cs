using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Envio.AppHost.Hosting;
using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>How the AppHost decides where the broker and the database come from, and what it says when it can't.</summary>
[Collection(AppHostTests.Name)]
public sealed class HostingChoiceTests
{
    // The model only: nothing here starts, so a plain builder is enough.
    private static IDistributedApplicationBuilder Builder(params string[] args) =>
        DistributedApplication.CreateBuilder(new DistributedApplicationOptions { Args = args, DisableDashboard = true });

    [Fact]
    public void Processes_mode_runs_rabbitmq_epmd_and_postgres_as_executables_and_no_container()
    {
        var builder = Builder("--Envio:Hosting=processes");
        var hosting = builder.ChooseHosting();
        builder.AddMessaging("messaging", hosting);
        builder.AddEnvioDatabase("enviodb", hosting);

        Assert.Equal(DatabaseEngine.Postgres, hosting.Database);
        Assert.Empty(builder.Resources.OfType<ContainerResource>());
        Assert.Contains(builder.Resources, r => r is RabbitMQProcessResource { Name: "messaging" });
        Assert.Contains(builder.Resources, r => r is ExecutableResource { Name: "messaging-epmd" });
        Assert.Contains(builder.Resources, r => r is PostgresProcessDatabaseResource { Name: "enviodb", DatabaseName: "enviodb" });
    }

    [Fact]
    public void Containers_mode_defaults_to_sql_server()
    {
        var builder = Builder("--Envio:Hosting=containers");
        var hosting = builder.ChooseHosting();
        builder.AddEnvioDatabase("enviodb", hosting);

        Assert.Equal(DatabaseEngine.SqlServer, hosting.Database);
        Assert.Contains(builder.Resources, r => r is SqlServerDatabaseResource { Name: "enviodb", Parent.Name: "sqlserver" });
    }

    [Fact]
    public void Existing_servers_given_as_connection_strings_are_used_as_they_are()
    {
        var builder = Builder("--Envio:Hosting=processes",
            "--ConnectionStrings:messaging=amqp://u:p@broker.example:5672",
            "--ConnectionStrings:enviodb=Server=db.example;Database=enviodb");
        var hosting = builder.ChooseHosting();
        var messaging = builder.AddMessaging("messaging", hosting);
        var enviodb = builder.AddEnvioDatabase("enviodb", hosting);

        Assert.IsNotType<RabbitMQProcessResource>(messaging.Resource);
        Assert.IsNotType<PostgresProcessDatabaseResource>(enviodb.Resource);
        Assert.Empty(builder.Resources.OfType<ExecutableResource>());
        Assert.Empty(builder.Resources.OfType<ContainerResource>());
    }

    [Fact]
    public void An_unknown_hosting_mode_is_a_clear_error()
    {
        var error = Assert.Throws<DistributedApplicationException>(() => Builder("--Envio:Hosting=kubernetes").ChooseHosting());
        Assert.Contains("'auto', 'containers' or 'processes'", error.Message);
    }

    [Fact]
    public void Sql_server_cannot_be_a_local_process()
    {
        var builder = Builder("--Envio:Hosting=processes", "--Envio:Database=sqlserver");
        var error = Assert.Throws<DistributedApplicationException>(() => builder.AddEnvioDatabase("enviodb", builder.ChooseHosting()));
        Assert.Contains("Envio:Database=postgres", error.Message);
    }

    [Fact]
    public void A_missing_binary_names_the_package_to_install()
    {
        var builder = Builder("--Envio:Hosting=processes", "--Envio:Processes:RabbitMQServer=/nonexistent/rabbitmq-server");
        var error = Assert.Throws<DistributedApplicationException>(() => builder.AddMessaging("messaging", builder.ChooseHosting()));
        Assert.Contains("apt-get install -y rabbitmq-server", error.Message);
        Assert.Contains("/nonexistent/rabbitmq-server", error.Message);
    }

    [Fact]
    public void Without_linux_the_missing_binary_asks_for_docker_or_podman_not_apt_get()
    {
        var error = LocalBinaries.Missing("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server", onLinux: false);
        Assert.Contains("processes mode needs Linux (Debian/Ubuntu packages); start Docker or Podman", error.Message);
        Assert.DoesNotContain("apt-get", error.Message);
    }
}
