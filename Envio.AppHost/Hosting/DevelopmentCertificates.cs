using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;

namespace Envio.AppHost.Hosting;

/// <summary>
/// A throwaway certificate authority for one run in processes mode, and a server certificate it issued for
/// <c>localhost</c>, <c>127.0.0.1</c> and <c>::1</c>. The broker and the database present the server certificate; the
/// services, the AppHost's health checks and the tests trust this authority and only it. The authority's private key
/// never leaves memory, so nothing else can ever be issued under it; the files live in the run's private directory
/// and go with it.
/// </summary>
public sealed class DevelopmentCertificates
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(30);
    private readonly Lock _writing = new();
    private readonly string _caPem;
    private readonly string _serverPem;
    private readonly string _serverKeyPem;
    private bool _written;

    private DevelopmentCertificates(string directory)
    {
        Directory = directory;
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);

        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=Envio development CA (one run)", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(notBefore, notBefore + Lifetime);

        using var serverKey = RSA.Create(2048);
        var serverRequest = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false)); // server authentication
        serverRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        serverRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(serverRequest.PublicKey, false));
        using var server = serverRequest.Create(ca, notBefore, notBefore + Lifetime, RandomNumberGenerator.GetBytes(16));

        _caPem = ca.ExportCertificatePem();
        _serverPem = server.ExportCertificatePem();
        _serverKeyPem = serverKey.ExportRSAPrivateKeyPem(); // PKCS#1: read by Erlang's ssl and by OpenSSL alike
    }

    /// <summary>Where the files are: <c>tls</c> in the run's private directory.</summary>
    public string Directory { get; }

    /// <summary>The authority's certificate (PEM), which clients trust.</summary>
    public string CaCertificatePath => Path.Combine(Directory, "ca.crt");

    public string ServerCertificatePath => Path.Combine(Directory, "server.crt");

    public string ServerKeyPath => Path.Combine(Directory, "server.key");

    /// <summary>The run's certificates (one set per AppHost), created on first use.</summary>
    public static DevelopmentCertificates For(IDistributedApplicationBuilder builder)
    {
        if (builder.Services.FirstOrDefault(d => d.ServiceType == typeof(DevelopmentCertificates))?.ImplementationInstance
            is DevelopmentCertificates existing)
        {
            return existing;
        }
        var certificates = new DevelopmentCertificates(Path.Combine(LocalProcessWorkspace.For(builder).RunDirectory, "tls"));
        builder.Services.AddSingleton(certificates);
        return certificates;
    }

    /// <summary>Writes the files once; the key is readable by this account only.</summary>
    public void EnsureWritten()
    {
        lock (_writing)
        {
            if (_written)
            {
                return;
            }
            System.IO.Directory.CreateDirectory(Directory);
            File.WriteAllText(CaCertificatePath, _caPem);
            File.WriteAllText(ServerCertificatePath, _serverPem);
            WritePrivate(ServerKeyPath, _serverKeyPem);
            _written = true;
        }
    }

    /// <summary>
    /// A copy of the server certificate and key in <paramref name="directory"/>, for a server that runs under another
    /// account and insists on owning its key (PostgreSQL); the caller hands the files to that account.
    /// </summary>
    public (string Certificate, string Key) CopyServerFilesTo(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        var (certificate, key) = (Path.Combine(directory, "server.crt"), Path.Combine(directory, "server.key"));
        File.WriteAllText(certificate, _serverPem);
        WritePrivate(key, _serverKeyPem);
        return (certificate, key);
    }

    private static void WritePrivate(string path, string content)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // never readable by others, not even briefly
        }
        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(content);
        }
    }
}
