using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Envio.AppHost.Operations;

/// <summary>
/// Development only: the API's signing key exists before the API starts (so the README's first token works), and
/// the dashboard mints tokens on the <c>api</c> resource.
/// </summary>
internal static class DevelopmentTokenCommands
{
    public const string MintToken = "mint-token";
    public const string ScopesArgument = "scopes";

    /// <summary>What the mint command offers: the scopes each choice grants.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> ScopeChoices = new Dictionary<string, string[]>
    {
        ["send"] = ["envio.send"],
        ["admin"] = ["envio.admin"],
        ["both"] = ["envio.send", "envio.admin"],
    };

    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);

    public static IResourceBuilder<ProjectResource> WithDevelopmentTokens(this IResourceBuilder<ProjectResource> api)
    {
        var builder = api.ApplicationBuilder;
        if (builder.ExecutionContext.IsPublishMode || !builder.Environment.IsDevelopment())
        {
            return api;
        }
        var tokens = DevelopmentTokens.For(api.Resource, builder.Configuration);
        builder.Services.AddSingleton(tokens);
        builder.Eventing.Subscribe<BeforeStartEvent>((_, _) =>
        {
            tokens.EnsureSigningKey();
            return Task.CompletedTask;
        });
        if (builder.Configuration[DevelopmentTokens.UserSecretsRootKey] is { Length: > 0 } root)
        {
            api.WithEnvironment("APPDATA", root); // where the user-secrets provider looks first, on every OS
        }

        // Always enabled (no UpdateState, unlike the commands that call the API): minting calls no resource, and a
        // token minted while the API starts is good once it runs.
        return api.WithCommand(MintToken, "Mint a development token", context =>
        {
            var choice = context.Arguments.GetString(ScopesArgument) ?? "";
            if (!ScopeChoices.TryGetValue(choice, out var scopes))
            {
                return Task.FromResult(CommandResults.Failure($"Choose one of: {string.Join(", ", ScopeChoices.Keys)}."));
            }
            var token = tokens.Create("aspire-dashboard", scopes, Lifetime);
            return Task.FromResult(CommandResults.Success(
                $"A token with {string.Join(" and ", scopes)}, valid for {Lifetime.TotalHours} hours: copy it into Scalar or an Authorization: Bearer header.",
                token, CommandResultFormat.Text, true));
        }, new CommandOptions
        {
            Description = "A bearer token signed with the development key dotnet user-jwts uses.",
            IconName = "Key",
            Arguments =
            [
                new InteractionInput
                {
                    Name = ScopesArgument,
                    Label = "Scopes",
                    InputType = InputType.Choice,
                    Required = true,
                    Value = "send",
                    Options = [.. ScopeChoices.Select(choice => KeyValuePair.Create(choice.Key, string.Join(" + ", choice.Value)))],
                },
            ],
        });
    }
}
