using System.Text;
using System.Text.RegularExpressions;
using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>
/// The README is a front page that sends readers to docs/ and deploy/: a moved section or a renamed heading must
/// not leave a link pointing nowhere. Every relative link of every tracked Markdown file must name a file that
/// exists and, when it has one, an anchor that a heading of that file produces under GitHub's slug rules.
/// </summary>
public sealed partial class DocumentationLinkTests
{
    public static TheoryData<string> MarkdownFiles() => [.. TrackedMarkdownFiles()];

    [Theory]
    [MemberData(nameof(MarkdownFiles))]
    public void Every_relative_link_and_anchor_resolves(string file)
    {
        var broken = new List<string>();
        foreach (var target in LinksIn(File.ReadAllText(Path.Combine(Repository.Root, file))))
        {
            if (Broken(file, target) is { } reason)
            {
                broken.Add($"{target}: {reason}");
            }
        }
        Assert.True(broken.Count == 0, $"{file} has broken links:\n{string.Join('\n', broken)}");
    }

    [Fact]
    public void The_front_page_and_the_pages_it_sends_readers_to_are_checked() =>
        Assert.Superset(
            new HashSet<string> { "README.md", "deploy/README.md", "docs/operations.md", "docs/security.md", "docs/reliability.md", "docs/performance.md" },
            TrackedMarkdownFiles().ToHashSet());

    [Theory]
    [InlineData("The two commands", "the-two-commands")]
    [InlineData("Handling the error queue (operators)", "handling-the-error-queue-operators")]
    [InlineData("SQL Server and Babelfish", "sql-server-and-babelfish")]
    [InlineData("Rotating keys, passwords and certificates", "rotating-keys-passwords-and-certificates")]
    [InlineData("Kubernetes: the Aspirate path", "kubernetes-the-aspirate-path")]
    [InlineData("`Envio:Hosting` and *friends*", "enviohosting-and-friends")]
    [InlineData("Resumo em português", "resumo-em-português")]
    public void Slugs_follow_github(string heading, string slug) => Assert.Equal(slug, Slug(heading));

    [Fact]
    public void A_repeated_heading_gets_a_numbered_anchor() =>
        Assert.Equal(["logs", "metrics", "logs-1"], Anchors("## Logs\n### Metrics\n# Logs\n```\n# not a heading\n```\n"));

    [Fact]
    public void A_link_to_a_missing_anchor_is_reported() =>
        Assert.NotNull(Broken("README.md", "docs/operations.md#no-such-section"));

    private static string? Broken(string file, string target)
    {
        var hash = target.IndexOf('#');
        var path = hash < 0 ? target : target[..hash];
        var anchor = hash < 0 ? null : Uri.UnescapeDataString(target[(hash + 1)..]);
        var resolved = path.Length == 0
            ? Path.Combine(Repository.Root, file)
            : Path.GetFullPath(Path.Combine(Repository.Root, Path.GetDirectoryName(file) ?? "", Uri.UnescapeDataString(path)));
        if (!File.Exists(resolved) && !Directory.Exists(resolved))
        {
            return $"{Path.GetRelativePath(Repository.Root, resolved)} does not exist";
        }
        if (anchor is null || !resolved.EndsWith(".md", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        return Anchors(File.ReadAllText(resolved)).Contains(anchor) ? null : $"no heading with the anchor #{anchor}";
    }

    /// <summary>Link targets outside code: inline links <c>[text](target)</c>, minus absolute URLs.</summary>
    private static IEnumerable<string> LinksIn(string markdown) =>
        OutsideCode(markdown)
            .SelectMany(line => InlineLink().Matches(InlineCode().Replace(line, "")))
            .Select(match => match.Groups["target"].Value)
            .Where(target => !Uri.TryCreate(target, UriKind.Absolute, out _));

    private static List<string> Anchors(string markdown)
    {
        var anchors = new List<string>();
        var seen = new Dictionary<string, int>();
        foreach (var line in OutsideCode(markdown))
        {
            if (Heading().Match(line) is not { Success: true } heading)
            {
                continue;
            }
            var slug = Slug(heading.Groups["text"].Value);
            var count = seen.GetValueOrDefault(slug);
            anchors.Add(count == 0 ? slug : $"{slug}-{count}");
            seen[slug] = count + 1;
        }
        return anchors;
    }

    /// <summary>GitHub's rule: lower case, drop what is not a letter, digit, space, '-' or '_', spaces become '-'.</summary>
    private static string Slug(string heading)
    {
        var slug = new StringBuilder();
        foreach (var c in LinkText().Replace(heading.Trim(), "${text}").ToLowerInvariant())
        {
            if (char.IsLetterOrDigit(c) || c is '-' or '_')
            {
                slug.Append(c);
            }
            else if (c == ' ')
            {
                slug.Append('-');
            }
        }
        return slug.ToString();
    }

    private static IEnumerable<string> OutsideCode(string markdown)
    {
        var inFence = false;
        foreach (var line in markdown.Split('\n'))
        {
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                inFence = !inFence;
                continue;
            }
            if (!inFence)
            {
                yield return line;
            }
        }
    }

    private static IEnumerable<string> TrackedMarkdownFiles()
    {
        var (exitCode, output) = Repository.RunAsync("git", ["ls-files", "*.md"], TestContext.Current.CancellationToken).GetAwaiter().GetResult();
        Assert.True(exitCode == 0, $"git ls-files failed: {output}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(file => File.Exists(Path.Combine(Repository.Root, file)))
            .Order(StringComparer.Ordinal);
    }

    [GeneratedRegex(@"^ {0,3}#{1,6}\s+(?<text>.+?)\s*#*\s*$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"\[[^\]]*\]\((?<target>[^)\s]+)(?:\s+""[^""]*"")?\)")]
    private static partial Regex InlineLink();

    [GeneratedRegex(@"`[^`]*`")]
    private static partial Regex InlineCode();

    [GeneratedRegex(@"\[(?<text>[^\]]*)\]\([^)]*\)")]
    private static partial Regex LinkText();
}
