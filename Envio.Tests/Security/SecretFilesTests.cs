using System.Collections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace Envio.Tests.Security;

/// <summary>
/// deploy/compose gives the services their connection strings and keys as files (<c>NAME_FILE=/run/secrets/...</c>):
/// the services read them as the configuration key NAME, as if NAME had been set.
/// </summary>
public sealed class SecretFilesTests : IDisposable
{
    private readonly string _secrets = Directory.CreateTempSubdirectory("envio-run-secrets-").FullName + "/";

    [Fact]
    public void A_NAME_FILE_variable_under_the_secrets_directory_gives_NAME_the_files_content()
    {
        File.WriteAllText(_secrets + "messaging-uri", "amqps://envio:secret@messaging:5671/envio\n");
        File.WriteAllText(_secrets + "encryption-key-k1", "a2V5\n");

        var configuration = new ConfigurationBuilder().AddSecretFiles(new Hashtable
        {
            ["ConnectionStrings__messaging_FILE"] = _secrets + "messaging-uri",
            ["Envio__Encryption__Keys__k1_FILE"] = _secrets + "encryption-key-k1",
            ["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt", // not a secret: left alone
        }, _secrets).Build();

        Assert.Equal("amqps://envio:secret@messaging:5671/envio", configuration.GetConnectionString("messaging"));
        Assert.Equal("a2V5", configuration["Envio:Encryption:Keys:k1"]);
        Assert.Null(configuration["SSL_CERT"]);
    }

    [Fact]
    public void A_secret_that_is_not_mounted_stops_the_service_with_its_name()
    {
        var missing = Assert.Throws<FileNotFoundException>(() => new ConfigurationBuilder().AddSecretFiles(new Hashtable
        {
            ["ConnectionStrings__enviodb_FILE"] = _secrets + "enviodb-connection",
        }, _secrets));

        Assert.Contains("ConnectionStrings__enviodb_FILE", missing.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_secrets, recursive: true);
}
