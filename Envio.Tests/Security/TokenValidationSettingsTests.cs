using System.Security.Cryptography;
using Envio.ApiService.Security;
using Envio.Tests.Support;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Envio.Tests.Security;

/// <summary>
/// What the API makes of its token settings before any request: why a token was refused is told in Development only,
/// and a symmetric signing key too short to resist an offline guess stops the start. (The live refusals are in
/// <see cref="AuthTests"/>.)
/// </summary>
public sealed class TokenValidationSettingsTests
{
    [Theory]
    [InlineData("Development", true)]
    [InlineData("Production", false)]
    [InlineData("Staging", false)]
    public void Why_a_token_was_refused_is_told_in_development_only(string environment, bool told)
    {
        using var services = Api(environment, RandomNumberGenerator.GetBytes(32)).Services.BuildServiceProvider();

        var bearer = services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme);

        Assert.Equal(told, bearer.IncludeErrorDetails);
        Assert.Equal(ApiAuthentication.AcceptedTypes, bearer.TokenValidationParameters.ValidTypes);
        Assert.DoesNotContain("none", bearer.TokenValidationParameters.ValidAlgorithms!);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(31)]
    public void A_symmetric_signing_key_under_256_bits_stops_the_start(int bytes)
    {
        using var services = Api("Production", RandomNumberGenerator.GetBytes(bytes)).Services.BuildServiceProvider();

        var refused = Assert.Throws<OptionsValidationException>(() =>
            services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme));
        Assert.Contains("shorter than 256 bits", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_symmetric_signing_key_of_256_bits_is_trusted()
    {
        using var services = Api("Production", RandomNumberGenerator.GetBytes(32)).Services.BuildServiceProvider();

        var bearer = services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme);

        Assert.Single(bearer.TokenValidationParameters.IssuerSigningKeys);
    }

    /// <summary>The API's authentication as Program.cs adds it, with a signing key as <c>dotnet user-jwts</c> writes it.</summary>
    private static HostApplicationBuilder Api(string environment, byte[] signingKey)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { EnvironmentName = environment });
        builder.Configuration["Authentication:Schemes:Bearer:ValidIssuer"] = TestTokens.Issuer;
        builder.Configuration["Authentication:Schemes:Bearer:ValidAudiences:0"] = TestTokens.Audience;
        builder.Configuration["Authentication:Schemes:Bearer:SigningKeys:0:Issuer"] = TestTokens.Issuer;
        builder.Configuration["Authentication:Schemes:Bearer:SigningKeys:0:Value"] = Convert.ToBase64String(signingKey);
        builder.AddApiAuthentication();
        return builder;
    }
}
