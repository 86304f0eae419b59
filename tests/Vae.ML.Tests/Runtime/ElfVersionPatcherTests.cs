using System.Buffers.Binary;
using System.Text;
using Vae.ML.Runtime;

namespace Vae.ML.Tests.Runtime;

public sealed class ElfVersionPatcherTests : IDisposable
{
    private const string StdCxx = "libstdc++.so.6";
    private const string MarkerVersion = "GLIBCXX_3.4.32";

    private readonly string _copy;
    private readonly string _directory;

    public ElfVersionPatcherTests()
    {
        _copy = NativeTestFiles.CopyToTemp(NativeTestFiles.LibTorchSharp(), out _directory);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Lists_the_libstdcxx_requirements_of_LibTorchSharp()
    {
        var requirements = ElfVersionPatcher.ReadRequirements(File.ReadAllBytes(_copy), _copy);

        requirements.Should().Contain(r => r.Library == StdCxx && r.Version == MarkerVersion && !r.IsWeak);
        requirements.Should().Contain(r => r.Library == StdCxx && r.Version == "GLIBCXX_3.4");
        requirements.Should().Contain(r => r.Library == "libc.so.6" && r.Version == "GLIBC_2.2.5");
        requirements.Select(r => r.Index).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public void Requirement_offsets_point_at_real_Vernaux_entries()
    {
        // Independent check of the parser: vna_hash, 4 bytes before vna_flags, is the SysV ELF hash of the name.
        byte[] image = File.ReadAllBytes(_copy);
        foreach (var requirement in ElfVersionPatcher.ReadRequirements(image, _copy))
        {
            uint storedHash = BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan((int)requirement.FlagsOffset - 4, 4));
            storedHash.Should().Be(ElfHash(requirement.Version), requirement.Version);
        }
    }

    [Fact]
    public void Reads_needed_libraries()
    {
        ElfVersionPatcher.ReadNeededLibraries(File.ReadAllBytes(_copy), _copy)
            .Should().ContainInOrder("libtorch.so", "libc10.so", "libtorch_cpu.so", StdCxx);
    }

    [Fact]
    public void Marking_the_marker_version_weak_changes_only_its_vna_flags()
    {
        byte[] original = File.ReadAllBytes(_copy);
        byte[] patched = (byte[])original.Clone();
        var target = ElfVersionPatcher.ReadRequirements(original, _copy).Single(r => r.Library == StdCxx && r.Version == MarkerVersion);

        ElfVersionPatcher.MarkRequirementWeak(patched, _copy, StdCxx, MarkerVersion).Should().BeTrue();

        patched.Length.Should().Be(original.Length);
        var differences = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        differences.Should().Equal((int)target.FlagsOffset); // vna_flags is little-endian: VER_FLG_WEAK is in its low byte
        original[target.FlagsOffset].Should().Be(0x00);
        patched[target.FlagsOffset].Should().Be(0x02);
        ElfVersionPatcher.ReadRequirements(patched, _copy)
            .Where(r => r.IsWeak).Select(r => r.Version).Should().Equal(MarkerVersion);
    }

    [Fact]
    public void Marking_weak_is_idempotent()
    {
        byte[] once = File.ReadAllBytes(_copy);
        ElfVersionPatcher.MarkRequirementWeak(once, _copy, StdCxx, MarkerVersion).Should().BeTrue();
        byte[] twice = (byte[])once.Clone();

        ElfVersionPatcher.MarkRequirementWeak(twice, _copy, StdCxx, MarkerVersion).Should().BeFalse();

        twice.Should().Equal(once);
    }

    [Fact]
    public void The_marker_version_has_no_relocations_but_the_base_version_has()
    {
        byte[] image = File.ReadAllBytes(_copy);
        var requirements = ElfVersionPatcher.ReadRequirements(image, _copy);
        ushort marker = requirements.Single(r => r.Version == MarkerVersion).Index;
        ushort baseVersion = requirements.Single(r => r.Library == StdCxx && r.Version == "GLIBCXX_3.4").Index;

        ElfVersionPatcher.CountRelocationsUsingVersion(image, _copy, marker).Should().Be(0);
        ElfVersionPatcher.CountRelocationsUsingVersion(image, _copy, baseVersion).Should().BeGreaterThan(0);
    }

    [Fact]
    public void Refuses_to_weaken_a_version_whose_symbols_are_relocated()
    {
        byte[] image = File.ReadAllBytes(_copy);
        byte[] before = (byte[])image.Clone();

        var act = () => ElfVersionPatcher.MarkRequirementWeak(image, _copy, StdCxx, "GLIBCXX_3.4");

        act.Should().Throw<InvalidOperationException>().WithMessage($"*{_copy}*GLIBCXX_3.4*relocation*");
        image.Should().Equal(before);
    }

    [Fact]
    public void Refuses_an_unknown_requirement()
    {
        byte[] image = File.ReadAllBytes(_copy);

        var act = () => ElfVersionPatcher.MarkRequirementWeak(image, _copy, StdCxx, "GLIBCXX_9.9");

        act.Should().Throw<InvalidOperationException>().WithMessage("*no requirement of version 'GLIBCXX_9.9'*");
    }

    [Fact]
    public void Refuses_a_file_that_is_not_ELF()
    {
        byte[] text = Encoding.ASCII.GetBytes("#!/bin/sh\necho this is not a shared object\n");

        var act = () => ElfVersionPatcher.ReadRequirements(text, "script.sh");

        act.Should().Throw<InvalidDataException>().WithMessage("'script.sh' is not a valid*ELF magic*");
    }

    [Theory]
    [InlineData(40)]
    [InlineData(4096)]
    public void Refuses_a_truncated_file(int length)
    {
        byte[] truncated = File.ReadAllBytes(_copy)[..length];

        var act = () => ElfVersionPatcher.MarkRequirementWeak(truncated, _copy, StdCxx, MarkerVersion);

        act.Should().Throw<InvalidDataException>().WithMessage($"'{_copy}'*truncated*");
    }

    [Fact]
    public void Refuses_a_foreign_architecture()
    {
        byte[] image = File.ReadAllBytes(_copy);
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(18, 2), 183); // EM_AARCH64

        var act = () => ElfVersionPatcher.MarkRequirementWeak(image, _copy, StdCxx, MarkerVersion);

        act.Should().Throw<InvalidDataException>().WithMessage($"'{_copy}'*e_machine is 183, expected 62 (x86-64)*");
    }

    [Theory]
    [InlineData(4, 1, "32-bit")]
    [InlineData(5, 2, "big-endian")]
    public void Refuses_32_bit_and_big_endian_files(int identByte, byte value, string expectedWord)
    {
        byte[] image = File.ReadAllBytes(_copy);
        image[identByte] = value;

        var act = () => ElfVersionPatcher.ReadRequirements(image, _copy);

        act.Should().Throw<InvalidDataException>().WithMessage($"'{_copy}'*{expectedWord}*");
    }

    [Fact]
    public void Reads_the_versions_the_system_libstdcxx_defines()
    {
        string? libstdcxx = LibTorchSharpFix.FindSystemLibrary(StdCxx);
        libstdcxx.Should().NotBeNull("the .NET host itself links libstdc++");

        var defined = ElfVersionPatcher.ReadDefinedVersions(File.ReadAllBytes(libstdcxx!), libstdcxx!);

        defined.Should().Contain(["GLIBCXX_3.4", "GLIBCXX_3.4.21", "CXXABI_1.3"]);
        defined.Should().NotContain(StdCxx, "the base definition is the file's own name, not a version");
    }

    private static uint ElfHash(string name)
    {
        uint hash = 0;
        foreach (byte c in Encoding.ASCII.GetBytes(name))
        {
            hash = (hash << 4) + c;
            uint high = hash & 0xf0000000;
            if (high != 0)
            {
                hash ^= high >> 24;
            }

            hash &= ~high;
        }
        return hash;
    }
}
