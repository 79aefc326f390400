using System.Collections;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace Envio.Tests.Security;

/// <summary>
/// Why the services read secrets with <see cref="SecretFiles"/> and not the framework's key-per-file provider
/// (Microsoft.Extensions.Configuration.KeyPerFile, in the ASP.NET Core shared framework): the deployments mount secret
/// files under names of their own (compose: <c>/run/secrets/messaging-api-uri</c>; Kubernetes: one folder per Secret,
/// <c>/run/secrets/messaging/uri</c>) and say which key each one is with a <c>NAME_FILE</c> variable. Key-per-file
/// takes the key from the file's name, and so reads these layouts wrong, as shown here on the same files.
/// </summary>
public sealed class SecretFilesKeyPerFileTests : IDisposable
{
    private const string Uri = "amqps://envio-api:secret@messaging:5671/envio";
    private readonly string _secrets = Directory.CreateTempSubdirectory("envio-run-secrets-").FullName + "/";

    [Fact]
    public void Compose_names_a_file_after_the_secret_not_after_the_key_it_gives()
    {
        File.WriteAllText(_secrets + "messaging-api-uri", Uri + "\n");

        var keyPerFile = new ConfigurationBuilder().AddKeyPerFile(_secrets, optional: false).Build();
        var secretFiles = new ConfigurationBuilder().AddSecretFiles(
            new Hashtable { ["ConnectionStrings__messaging_FILE"] = _secrets + "messaging-api-uri" }, _secrets).Build();

        Assert.Null(keyPerFile.GetConnectionString("messaging"));
        Assert.Equal(Uri, keyPerFile["messaging-api-uri"]); // a key no service reads
        Assert.Equal(Uri, secretFiles.GetConnectionString("messaging"));
    }

    [Fact]
    public void Kubernetes_mounts_each_secret_as_a_folder_which_key_per_file_does_not_enter()
    {
        Directory.CreateDirectory(_secrets + "messaging");
        File.WriteAllText(_secrets + "messaging/uri", Uri + "\n");

        var keyPerFile = new ConfigurationBuilder().AddKeyPerFile(_secrets, optional: false).Build();
        var secretFiles = new ConfigurationBuilder().AddSecretFiles(
            new Hashtable { ["ConnectionStrings__messaging_FILE"] = _secrets + "messaging/uri" }, _secrets).Build();

        Assert.Empty(keyPerFile.AsEnumerable());
        Assert.Equal(Uri, secretFiles.GetConnectionString("messaging"));
    }

    [Fact]
    public void A_secret_that_is_not_mounted_goes_unnoticed_by_key_per_file_and_stops_the_service_with_secret_files()
    {
        var keyPerFile = new ConfigurationBuilder().AddKeyPerFile(_secrets, optional: false).Build();

        Assert.Null(keyPerFile.GetConnectionString("enviodb")); // the service would start, then fail at its first query
        Assert.Throws<FileNotFoundException>(() => new ConfigurationBuilder().AddSecretFiles(
            new Hashtable { ["ConnectionStrings__enviodb_FILE"] = _secrets + "enviodb-connection" }, _secrets));
    }

    public void Dispose() => Directory.Delete(_secrets, recursive: true);
}
