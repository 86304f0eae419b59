using Vae.ML.Runtime;
using static TorchSharp.torch;

namespace Vae.ML.Tests.Runtime;

public sealed class TorchRuntimeTests
{
    [Fact]
    public void After_EnsureInitialized_TorchSharp_computes_on_this_machine()
    {
        Parallel.For(0, 4, _ => TorchRuntime.EnsureInitialized());
        TorchRuntime.EnsureInitialized(); // second call: a flag check

        using var a = tensor(new float[] { 1, 2, 3, 4 }, 2, 2);
        using var b = tensor(new float[] { 5, 6, 7, 8 }, 2, 2);
        using var product = a.matmul(b);

        product.data<float>().ToArray().Should().Equal(19f, 22f, 43f, 50f);
    }

    [Fact]
    public void The_patched_copy_is_loaded_exactly_when_this_system_lacks_a_required_version()
    {
        TorchRuntime.EnsureInitialized();
        string original = NativeTestFiles.LibTorchSharp();
        var requirements = ElfVersionPatcher.ReadRequirements(File.ReadAllBytes(original), original);
        var missing = LibTorchSharpFix.FindMissingVersions(requirements, library =>
            LibTorchSharpFix.FindSystemLibrary(library) is { } path ? ElfVersionPatcher.ReadDefinedVersions(File.ReadAllBytes(path), path) : null);

        var loaded = File.ReadLines("/proc/self/maps")
            .Where(line => line.EndsWith("/libLibTorchSharp.so", StringComparison.Ordinal))
            .Select(line => line[line.IndexOf('/')..]).Distinct().ToList();

        loaded.Should().ContainSingle("one copy of the library, not two");
        if (missing.Count > 0)
        {
            loaded[0].Should().Contain($"{Path.DirectorySeparatorChar}vae-ml").And.NotBe(original);
        }
        else
        {
            loaded[0].Should().NotContain("vae-ml");
        }
    }
}
