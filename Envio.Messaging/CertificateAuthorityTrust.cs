using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Validates a server certificate against one certificate authority and nothing else: the machine's trust store is
/// not consulted, so a certificate from any other authority (public or not) is refused, and so is a certificate for
/// another host name.
/// </summary>
public static class CertificateAuthorityTrust
{
    /// <summary>Reads the authority's certificate (PEM or DER) from <paramref name="path"/>.</summary>
    public static X509Certificate2 Load(string path) =>
        File.Exists(path)
            ? X509CertificateLoader.LoadCertificateFromFile(path)
            : throw new FileNotFoundException($"The certificate authority file '{path}' does not exist.", path);

    /// <summary>A validation callback that accepts only a certificate for the requested host, issued by <paramref name="authority"/>.</summary>
    public static RemoteCertificateValidationCallback Only(X509Certificate2 authority) =>
        (_, certificate, presentedChain, errors) => IsTrusted(certificate, presentedChain, errors, authority);

    public static bool IsTrusted(X509Certificate? certificate, X509Chain? presentedChain, SslPolicyErrors errors, X509Certificate2 authority)
    {
        // The platform already compared the host name; a missing certificate or another name is never acceptable.
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable)
            || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // a private authority publishes no revocation list
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        if (presentedChain is not null)
        {
            // Intermediates the server sent may complete the path; only the authority can end it.
            foreach (var element in presentedChain.ChainElements.Skip(1))
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }
        // The certificate belongs to the TLS stream: only a copy made here is disposed here.
        using var copy = certificate is X509Certificate2 ? null : new X509Certificate2(certificate);
        return chain.Build(copy ?? (X509Certificate2)certificate)
            && chain.ChainElements[^1].Certificate.RawDataMemory.Span.SequenceEqual(authority.RawDataMemory.Span);
    }
}
