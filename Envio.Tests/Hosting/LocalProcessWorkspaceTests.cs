using Aspire.Hosting;
using Envio.AppHost.Hosting;
using Envio.Tests.Support;

namespace Envio.Tests.Hosting;

/// <summary>
/// The processes mode's folders hold the broker's and the database's passwords and keys: they are this user's alone
/// from the moment they exist, and a data root someone else owns (the default sits in the shared temp folder, under a
/// name anyone can guess) is refused before anything is written into it.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // processes mode runs on Linux
public sealed class LocalProcessWorkspaceTests : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly string _dataRoot = EnvioAppHost.NewDataRoot();

    [Fact]
    public void The_data_root_and_the_run_directories_are_created_for_this_user_only()
    {
        var workspace = Workspace();

        var resource = workspace.DirectoryFor("messaging");

        Assert.Equal(OwnerOnly, File.GetUnixFileMode(_dataRoot));
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(workspace.RunDirectory));
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(resource));
    }

    [Fact]
    public void An_existing_data_root_of_this_user_keeps_nothing_for_others_but_its_group_s_pass_through()
    {
        Directory.CreateDirectory(_dataRoot);
        File.SetUnixFileMode(_dataRoot, OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);

        Workspace().DirectoryFor("enviodb");

        // The group's pass-through (x, not r or w) is what a running PostgreSQL under its own account needs to reach its data.
        Assert.Equal(OwnerOnly | UnixFileMode.GroupExecute, File.GetUnixFileMode(_dataRoot));
    }

    [Fact]
    public async Task A_data_root_owned_by_someone_else_is_refused_and_nothing_is_written_into_it()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "Giving a folder to another user needs root.");
        Directory.CreateDirectory(_dataRoot);
        var (exitCode, output) = await Repository.RunAsync("chown", ["nobody", _dataRoot], TestContext.Current.CancellationToken);
        Assert.True(exitCode == 0, output);

        var refusal = Assert.Throws<DistributedApplicationException>(() => Workspace().DirectoryFor("messaging"));

        Assert.Contains("Envio:Processes:DataRoot", refusal.Message, StringComparison.Ordinal);
        Assert.Contains("not to this user", refusal.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dataRoot));
    }

    [Fact]
    public void A_symbolic_link_as_the_data_root_is_refused()
    {
        var elsewhere = _dataRoot + "-target";
        Directory.CreateDirectory(elsewhere);
        Directory.CreateSymbolicLink(_dataRoot, elsewhere);
        try
        {
            Assert.Throws<DistributedApplicationException>(() => Workspace().DirectoryFor("messaging"));
            Assert.Empty(Directory.EnumerateFileSystemEntries(elsewhere));
        }
        finally
        {
            File.Delete(_dataRoot);
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public async Task A_secret_file_is_owner_only_and_one_left_readable_by_others_is_replaced()
    {
        var ct = TestContext.Current.CancellationToken;
        var directory = Workspace().DirectoryFor("enviodb");
        var path = Path.Combine(directory, "pwfile");
        await File.WriteAllTextAsync(path, "old", ct);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        await LocalProcessWorkspace.WriteSecretFileAsync(path, "s3cret", ct);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal("s3cret", await File.ReadAllTextAsync(path, ct));
    }

    private LocalProcessWorkspace Workspace() =>
        LocalProcessWorkspace.For(DistributedApplication.CreateBuilder([$"--Envio:Processes:DataRoot={_dataRoot}"]));

    public void Dispose()
    {
        if (Directory.Exists(_dataRoot))
        {
            Directory.Delete(_dataRoot, recursive: true);
        }
    }
}
