using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Envio.Tests.Support;

namespace Envio.Tests.Compatibility;

/// <summary>
/// The committed snapshots of what deployed orders depend on (Envio.Tests/Compatibility/Snapshots/*.json, read from
/// the checkout, never from the build output, so a recorded file is the one git sees). With
/// <c>ENVIO_RECORD_SNAPSHOTS=1</c> a test writes what it observed there instead of comparing, and passes: record on
/// the code whose behaviour is the reference, review the files, commit them.
/// </summary>
public static class Snapshots
{
    public const string RecordVariable = "ENVIO_RECORD_SNAPSHOTS";

    public static bool Recording => Environment.GetEnvironmentVariable(RecordVariable) == "1";

    public static string Folder { get; } = Path.Combine(Repository.Root, "Envio.Tests", "Compatibility", "Snapshots");

    /// <summary>Readable files and messages: "×" and "'" as themselves, not as \u escapes.</summary>
    public static JsonSerializerOptions Indented { get; } = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static JsonSerializerOptions Compact { get; } = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Records <paramref name="actual"/> as snapshot <paramref name="name"/>, or compares it with the recorded one and
    /// fails naming the first differing paths. <paramref name="additions"/> says where the live JSON may hold more than
    /// the snapshot (see <see cref="JsonComparison"/>); by default nowhere.
    /// </summary>
    public static void Match(string name, JsonNode actual, Func<IReadOnlyList<string>, Additions>? additions = null)
    {
        var file = Path.Combine(Folder, name + ".json");
        if (Recording)
        {
            Directory.CreateDirectory(Folder);
            File.WriteAllText(file, actual.ToJsonString(Indented) + "\n", new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            return;
        }
        Assert.True(File.Exists(file),
            $"The snapshot {file} is missing. Record it on the code it should describe: {RecordVariable}=1 scripts/with-test-sqlserver.sh " +
            "dotnet test --project Envio.Tests -- --filter-namespace Envio.Tests.Compatibility, then review and commit the file.");
        var expected = JsonNode.Parse(File.ReadAllText(file));
        var differences = JsonComparison.Differences(expected, actual, additions);
        Assert.True(differences.Count == 0,
            $"The live system differs from the snapshot {name}.json ({file}); the first differences:\n  " + string.Join("\n  ", differences) +
            $"\nA deployed order depends on what the snapshot holds. Record again ({RecordVariable}=1) only for a change that is meant to break compatibility.");
    }
}
