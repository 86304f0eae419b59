using System.Runtime.Versioning;
using Vae.ML.Runtime;

namespace Vae.ML.Tests.Runtime;

[SupportedOSPlatform("linux")] // the fix and these tests concern Linux only
public sealed class LibTorchSharpFixTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vae-ml-fix-test-").FullName;

    private string CacheRoot => Path.Combine(_directory, "native");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Finds_exactly_the_versions_the_system_library_lacks()
    {
        string library = NativeTestFiles.LibTorchSharp();
        var requirements = ElfVersionPatcher.ReadRequirements(File.ReadAllBytes(library), library);
        // A libstdc++ that stops before 3.4.32, as on Debian 12; libraries not found are not judged.
        var oldStdCxx = requirements.Where(r => r.Library == "libstdc++.so.6" && r.Version != "GLIBCXX_3.4.32")
            .Select(r => r.Version).ToHashSet();

        var missing = LibTorchSharpFix.FindMissingVersions(requirements, lib => lib == "libstdc++.so.6" ? oldStdCxx : null);

        missing.Select(m => (m.Library, m.Version)).Should().Equal(("libstdc++.so.6", "GLIBCXX_3.4.32"));
    }

    [Fact]
    public void Weak_requirements_and_complete_systems_need_nothing()
    {
        string library = NativeTestFiles.LibTorchSharp();
        byte[] image = File.ReadAllBytes(library);
        var requirements = ElfVersionPatcher.ReadRequirements(image, library);
        var everything = requirements.Select(r => r.Version).ToHashSet();
        var oldStdCxx = everything.Where(v => v != "GLIBCXX_3.4.32").ToHashSet();
        ElfVersionPatcher.MarkRequirementWeak(image, library, "libstdc++.so.6", "GLIBCXX_3.4.32");

        LibTorchSharpFix.FindMissingVersions(requirements, _ => everything).Should().BeEmpty();
        LibTorchSharpFix.FindMissingVersions(ElfVersionPatcher.ReadRequirements(image, library), _ => oldStdCxx).Should().BeEmpty();
    }

    [Fact]
    public void Places_the_copy_atomically_in_an_owner_only_folder_named_by_hash()
    {
        byte[] patched = [0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 2, 3];

        string path = LibTorchSharpFix.PlacePatchedCopy(CacheRoot, "abc123", patched);

        path.Should().Be(Path.Combine(CacheRoot, "abc123", "libLibTorchSharp.so"));
        File.ReadAllBytes(path).Should().Equal(patched);
        File.GetUnixFileMode(Path.GetDirectoryName(path)!).Should()
            .Be(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.GetFiles(Path.GetDirectoryName(path)!).Should().Equal(path); // no temporary file left behind
    }

    [Fact]
    public void Reuses_an_identical_copy_and_replaces_a_different_one()
    {
        byte[] patched = [1, 2, 3, 4];
        string path = LibTorchSharpFix.PlacePatchedCopy(CacheRoot, "h", patched);
        var written = new FileInfo(path).LastWriteTimeUtc;
        File.SetLastWriteTimeUtc(path, written.AddHours(-1));

        LibTorchSharpFix.PlacePatchedCopy(CacheRoot, "h", patched).Should().Be(path);
        new FileInfo(path).LastWriteTimeUtc.Should().Be(written.AddHours(-1), "an identical copy is not rewritten");

        File.WriteAllBytes(path, [9, 9]);
        LibTorchSharpFix.PlacePatchedCopy(CacheRoot, "h", patched).Should().Be(path);
        File.ReadAllBytes(path).Should().Equal(patched);
    }

    [Fact]
    public void Refuses_a_cache_folder_other_users_can_write_to()
    {
        string shared = Path.Combine(_directory, "vae-ml-shared");
        Directory.CreateDirectory(shared);
        File.SetUnixFileMode(shared, (UnixFileMode)0x1ff); // rwxrwxrwx

        var act = () => LibTorchSharpFix.PlacePatchedCopy(Path.Combine(shared, "native"), "h", [1, 2, 3]);

        act.Should().Throw<UnauthorizedAccessException>().WithMessage($"'{shared}' is writable by other users*");
    }

    [Theory]
    [InlineData(null, false, false)]
    [InlineData("0", false, false)]
    [InlineData("", false, false)]
    [InlineData("1", false, true)]
    [InlineData("true", false, true)]
    [InlineData(" TRUE ", false, true)]
    [InlineData(null, true, true)]
    public void Either_switch_disables_the_fix(string? environmentValue, bool appContextSwitch, bool expected)
    {
        LibTorchSharpFix.IsDisabled(environmentValue, appContextSwitch).Should().Be(expected);
    }

    [Fact]
    public void Finds_the_backend_deployed_next_to_this_test()
    {
        var probe = LibTorchSharpFix.ProbeDirectories(Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location)!);

        LibTorchSharpFix.FindBackend(probe).Should().EndWith("libtorch_cpu.so");
        LibTorchSharpFix.FindFile(probe, "libLibTorchSharp.so").Should().NotBeNull();
    }

    [Fact]
    public void Without_a_backend_the_error_names_the_packages_to_add()
    {
        var probe = new[] { _directory };
        LibTorchSharpFix.FindBackend(probe).Should().BeNull();

        var error = TorchRuntime.MissingBackend(probe, innerException: null);

        error.Should().BeOfType<TorchBackendException>();
        error.Message.Should().Contain(_directory).And.Contain("'TorchSharp-cpu'").And.Contain("'libtorch-cpu-linux-x64'")
            .And.Contain("'libtorch-cpu-win-x64'").And.Contain("'libtorch-cpu-osx-arm64'")
            .And.Contain("'TorchSharp-cuda-linux'").And.Contain("'TorchSharp-cuda-windows'");
    }
}
