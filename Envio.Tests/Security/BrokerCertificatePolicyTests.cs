using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RabbitMQ.Client;

namespace Envio.Tests.Security;

/// <summary>
/// The services' broker client without <c>Envio:Tls:CaCertificate</c>: the machine's store decides who issued the
/// certificate, but the certificate must still name the broker's host; and outside Development there is no plain AMQP.
/// </summary>
public sealed class BrokerCertificatePolicyTests
{
    [Fact]
    public void Without_a_ca_file_a_trusted_certificate_for_another_host_name_is_refused()
    {
        var factory = ServicesBrokerFactory("amqps://envio:secret@messaging:5671/envio");
        using var otherHost = CertificateFor("some-other-host.example");

        // What the platform reports for a certificate the machine trusts, issued for another host than "messaging".
        Assert.False(Accepts(factory, otherHost, SslPolicyErrors.RemoteCertificateNameMismatch));
        Assert.False(Accepts(factory, otherHost, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.True(Accepts(factory, otherHost, SslPolicyErrors.None));
    }

    [Fact]
    public void Outside_development_a_plaintext_broker_connection_string_stops_the_service_at_start()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = Environments.Production });
        builder.Configuration["ConnectionStrings:messaging"] = "amqp://envio:secret@messaging:5672/envio";

        var refused = Assert.Throws<InvalidOperationException>(() => builder.AddRabbitMQClientOverTls("messaging"));
        Assert.Contains("amqps://", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void In_development_plaintext_amqp_is_still_accepted()
    {
        var factory = ServicesBrokerFactory("amqp://envio:secret@localhost:5672/envio", Environments.Development);

        Assert.False(factory.Ssl.Enabled);
    }

    /// <summary>The connection factory the API and the consumer get, from their own registration.</summary>
    private static ConnectionFactory ServicesBrokerFactory(string connectionString, string environment = "Production")
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = environment });
        builder.Configuration["ConnectionStrings:messaging"] = connectionString;
        builder.AddRabbitMQClientOverTls("messaging");
        using var host = builder.Build();
        return (ConnectionFactory)host.Services.GetRequiredService<IConnectionFactory>();
    }

    /// <summary>
    /// The client's decision: the validation callback when one is set, else its own rule (SslHelper): every error not
    /// in <see cref="SslOption.AcceptablePolicyErrors"/> refuses the certificate.
    /// </summary>
    private static bool Accepts(ConnectionFactory factory, X509Certificate2 certificate, SslPolicyErrors errors) =>
        factory.Ssl.CertificateValidationCallback is { } callback
            ? callback(new object(), certificate, null, errors)
            : (errors & ~factory.Ssl.AcceptablePolicyErrors) == SslPolicyErrors.None;

    private static X509Certificate2 CertificateFor(string hostName)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={hostName}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(hostName);
        request.CertificateExtensions.Add(names.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }
}
