using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Envio.Tests.Support;

namespace Envio.Tests.Operations;

/// <summary>
/// Tests on one stack run as a newcomer runs it (<see cref="DevelopmentStack"/>), in two files: this one, the first
/// token; DevelopmentStackTests.DashboardCommands.cs, the dashboard's commands.
/// </summary>
[Collection(AppHostTests.Name)]
public sealed partial class DevelopmentStackTests(DevelopmentStack stack) : IClassFixture<DevelopmentStack>
{
    // The README's first steps in their order, on a machine that never made a development token: the stack up, then
    // `dotnet user-jwts create`, then a POST. The API reads its signing keys once, at start: the tool must find the
    // key the API already trusts rather than write a new one the API has never seen ("signature key not found").
    [Fact]
    public async Task A_token_made_with_dotnet_user_jwts_after_the_stack_started_is_accepted_and_the_order_stored()
    {
        var ct = TestContext.Current.CancellationToken;
        Assert.True(stack.StoreWasEmptyAtStart, "the user-secrets store must be empty when the stack starts");

        var token = await UserJwtsCreateAsync(["--scope", "envio.send"], ct);

        var order = SampleOrders.Create(40_001);
        using var api = stack.Api(token);
        using var response = await api.PostAsJsonAsync("/api/orders", order, ct);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted,
            $"{(int)response.StatusCode} {response.Headers.WwwAuthenticate}: {await response.Content.ReadAsStringAsync(ct)}");
        Assert.Equal(1, await StoredOrders.WaitForAsync(stack.Orders, [order.OrderId], TimeSpan.FromSeconds(60)));
    }

    /// <summary><c>dotnet user-jwts create --project Envio.ApiService … -o token</c>, against the stack's own store.</summary>
    private async Task<string> UserJwtsCreateAsync(string[] arguments, CancellationToken ct)
    {
        var start = new ProcessStartInfo("dotnet", ["user-jwts", "create", "--project", "Envio.ApiService", .. arguments, "-o", "token"])
        {
            WorkingDirectory = Repository.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["APPDATA"] = stack.UserSecretsRoot; // the user-secrets store looks there first, on every OS
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        Assert.True(process.ExitCode == 0, $"dotnet user-jwts failed ({process.ExitCode}): {await output}{await error}");
        return (await output).Trim();
    }
}
