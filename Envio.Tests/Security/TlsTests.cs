using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Envio.Tests.Support;
using Microsoft.Extensions.Hosting;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Envio.Tests.Security;

/// <summary>
/// Data in transit: the broker and the database speak TLS only, and a client that does not trust the run's authority
/// does not talk to them. (The whole path over TLS is <see cref="EndToEnd.DataPathTests"/>: the services have no other way in.)
/// </summary>
[Collection(AppHostTests.Name)]
public sealed class TlsTests(EnvioStack stack)
{
    [Fact]
    public async Task The_broker_refuses_plaintext_AMQP()
    {
        var ct = TestContext.Current.CancellationToken;
        var tls = await stack.App.BrokerFactoryAsync(ct);
        Assert.True(tls.Ssl.Enabled);
        var plaintext = new ConnectionFactory
        {
            Uri = new UriBuilder(tls.Uri) { Scheme = "amqp" }.Uri,
            AutomaticRecoveryEnabled = false,
            RequestedConnectionTimeout = TimeSpan.FromSeconds(10),
        };

        await Assert.ThrowsAsync<BrokerUnreachableException>(() => plaintext.CreateConnectionAsync(ct));
    }

    [Fact]
    public async Task A_client_trusting_only_the_machines_store_refuses_the_broker()
    {
        var ct = TestContext.Current.CancellationToken;
        var factory = new ConnectionFactory
        {
            Uri = new Uri((await stack.App.GetConnectionStringAsync("messaging", ct))!),
            AutomaticRecoveryEnabled = false,
        };

        var refused = await Assert.ThrowsAsync<BrokerUnreachableException>(() => factory.CreateConnectionAsync(ct));
        Assert.Contains(Causes(refused), e => e is AuthenticationException);
    }

    [Fact]
    public async Task A_client_trusting_another_authority_refuses_the_broker()
    {
        var ct = TestContext.Current.CancellationToken;
        var otherAuthority = Path.Combine(Path.GetTempPath(), $"envio-other-ca-{Guid.NewGuid():N}.crt");
        await File.WriteAllTextAsync(otherAuthority, NewAuthority().ExportCertificatePem(), ct);
        try
        {
            var factory = new ConnectionFactory
            {
                Uri = new Uri((await stack.App.GetConnectionStringAsync("messaging", ct))!),
                AutomaticRecoveryEnabled = false,
            }.TrustOnly(otherAuthority);

            var refused = await Assert.ThrowsAsync<BrokerUnreachableException>(() => factory.CreateConnectionAsync(ct));
            Assert.Contains(Causes(refused), e => e is AuthenticationException);
        }
        finally
        {
            File.Delete(otherAuthority);
        }
    }

    [Fact]
    public async Task The_database_refuses_a_connection_without_TLS()
    {
        var ct = TestContext.Current.CancellationToken;
        var plaintext = new NpgsqlConnectionStringBuilder((await stack.App.GetConnectionStringAsync("enviodb", ct))!)
        {
            SslMode = SslMode.Disable,
        };
        await using var connection = new NpgsqlConnection(plaintext.ConnectionString);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync(ct));
        Assert.Equal(PostgresErrorCodes.InvalidAuthorizationSpecification, refused.SqlState);
    }

    [Fact]
    public async Task Database_clients_verify_the_server_against_the_run_authority_and_the_session_is_encrypted()
    {
        var ct = TestContext.Current.CancellationToken;
        var handedOut = new NpgsqlConnectionStringBuilder((await stack.App.GetConnectionStringAsync("enviodb", ct))!);
        Assert.Equal(SslMode.VerifyFull, handedOut.SslMode);
        Assert.Equal(stack.App.CaCertificatePath(), handedOut.RootCertificate);

        await using var connection = await stack.Database.OpenConnectionAsync(ct);
        await using var command = new NpgsqlCommand("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", connection);
        Assert.Equal(true, await command.ExecuteScalarAsync(ct));
    }

    [Fact]
    public async Task A_database_client_trusting_another_authority_refuses_the_server()
    {
        var ct = TestContext.Current.CancellationToken;
        var otherAuthority = Path.Combine(Path.GetTempPath(), $"envio-other-ca-{Guid.NewGuid():N}.crt");
        await File.WriteAllTextAsync(otherAuthority, NewAuthority().ExportCertificatePem(), ct);
        try
        {
            var builder = new NpgsqlConnectionStringBuilder((await stack.App.GetConnectionStringAsync("enviodb", ct))!)
            {
                RootCertificate = otherAuthority,
                Pooling = false,
            };
            await using var connection = new NpgsqlConnection(builder.ConnectionString);

            var refused = await Assert.ThrowsAnyAsync<Exception>(() => connection.OpenAsync(ct));
            Assert.Contains(Causes(refused), e => e is AuthenticationException);
        }
        finally
        {
            File.Delete(otherAuthority);
        }
    }

    [Fact]
    public void A_certificate_from_the_authority_for_another_host_name_is_refused()
    {
        using var authority = CertificateAuthorityTrust.Load(stack.App.CaCertificatePath());
        using var server = X509CertificateLoader.LoadCertificateFromFile(
            Path.Combine(Path.GetDirectoryName(stack.App.CaCertificatePath())!, "server.crt"));

        Assert.True(CertificateAuthorityTrust.IsTrusted(server, null, SslPolicyErrors.RemoteCertificateChainErrors, authority));
        Assert.False(CertificateAuthorityTrust.IsTrusted(server, null, SslPolicyErrors.RemoteCertificateNameMismatch, authority));
        Assert.False(CertificateAuthorityTrust.IsTrusted(null, null, SslPolicyErrors.RemoteCertificateNotAvailable, authority));
    }

    private static X509Certificate2 NewAuthority()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=Some other authority", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    private static IEnumerable<Exception> Causes(Exception exception)
    {
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            yield return e;
            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Causes))
                {
                    yield return inner;
                }
            }
        }
    }
}
