using System.Buffers.Binary;
using System.Text;

namespace Vae.ML.Runtime;

/// <summary>One symbol-version requirement (an <c>Elf64_Vernaux</c> entry of <c>.gnu.version_r</c>).</summary>
/// <param name="Library">The needed library, e.g. <c>libstdc++.so.6</c>.</param>
/// <param name="Version">The version name, e.g. <c>GLIBCXX_3.4.32</c>.</param>
/// <param name="Index">The version index (<c>vna_other</c>) that <c>.gnu.version</c> entries refer to.</param>
/// <param name="IsWeak">Whether <c>VER_FLG_WEAK</c> is set: the loader then tolerates a library without this version.</param>
/// <param name="FlagsOffset">File offset of the 2-byte <c>vna_flags</c> field.</param>
internal sealed record ElfVersionRequirement(string Library, string Version, ushort Index, bool IsWeak, long FlagsOffset);

/// <summary>
/// Reads and patches the symbol-versioning tables of a 64-bit little-endian x86-64 ELF shared object.
/// Only what the native-loading fix needs: required versions (<c>.gnu.version_r</c>), defined versions
/// (<c>.gnu.version_d</c>), needed libraries (<c>DT_NEEDED</c>), and marking one requirement weak when no
/// relocation can ever look up a symbol of that version.
/// </summary>
internal static class ElfVersionPatcher
{
    private const ushort MachineX86_64 = 62;
    private const uint SectionDynsym = 11;
    private const uint SectionRela = 4;
    private const uint SectionRel = 9;
    private const uint SectionDynamic = 6;
    private const uint SectionVerdef = 0x6ffffffd;
    private const uint SectionVerneed = 0x6ffffffe;
    private const uint SectionVersym = 0x6fffffff;
    private const ushort VersionFlagBase = 0x1;
    private const ushort VersionFlagWeak = 0x2;
    private const long DynamicNeeded = 1;
    private const long DynamicNull = 0;

    /// <summary>Lists every (library, version) requirement of the image, in file order.</summary>
    public static IReadOnlyList<ElfVersionRequirement> ReadRequirements(byte[] image, string fileName)
    {
        var elf = new Elf(image, fileName);
        var result = new List<ElfVersionRequirement>();
        var verneed = elf.FindSection(SectionVerneed);
        if (verneed is null)
        {
            return result;
        }

        var strings = elf.Section(verneed.Value.Link);
        long entry = verneed.Value.Offset;
        for (uint i = 0; i < verneed.Value.Info; i++)
        {
            elf.Check(entry, 16, verneed.Value, "Elf64_Verneed");
            ushort auxCount = elf.U16(entry + 2);
            string library = elf.String(strings, elf.U32(entry + 4));
            long aux = entry + elf.U32(entry + 8);
            for (ushort j = 0; j < auxCount; j++)
            {
                elf.Check(aux, 16, verneed.Value, "Elf64_Vernaux");
                ushort flags = elf.U16(aux + 4);
                result.Add(new ElfVersionRequirement(
                    library, elf.String(strings, elf.U32(aux + 8)), elf.U16(aux + 6), (flags & VersionFlagWeak) != 0, aux + 4));
                uint nextAux = elf.U32(aux + 12);
                if (nextAux == 0)
                {
                    break;
                }

                aux += nextAux;
            }
            uint next = elf.U32(entry + 12);
            if (next == 0)
            {
                break;
            }

            entry += next;
        }
        return result;
    }

    /// <summary>Lists the versions the image defines (<c>.gnu.version_d</c>), without its own base name.</summary>
    public static IReadOnlySet<string> ReadDefinedVersions(byte[] image, string fileName)
    {
        var elf = new Elf(image, fileName);
        var result = new HashSet<string>(StringComparer.Ordinal);
        var verdef = elf.FindSection(SectionVerdef);
        if (verdef is null)
        {
            return result;
        }

        var strings = elf.Section(verdef.Value.Link);
        long entry = verdef.Value.Offset;
        for (uint i = 0; i < verdef.Value.Info; i++)
        {
            elf.Check(entry, 20, verdef.Value, "Elf64_Verdef");
            ushort flags = elf.U16(entry + 2);
            long aux = entry + elf.U32(entry + 12);
            elf.Check(aux, 8, verdef.Value, "Elf64_Verdaux");
            if ((flags & VersionFlagBase) == 0)
            {
                result.Add(elf.String(strings, elf.U32(aux)));
            }

            uint next = elf.U32(entry + 16);
            if (next == 0)
            {
                break;
            }

            entry += next;
        }
        return result;
    }

    /// <summary>Lists the <c>DT_NEEDED</c> libraries of the image, in load order.</summary>
    public static IReadOnlyList<string> ReadNeededLibraries(byte[] image, string fileName)
    {
        var elf = new Elf(image, fileName);
        var result = new List<string>();
        var dynamic = elf.FindSection(SectionDynamic);
        if (dynamic is null)
        {
            return result;
        }

        var strings = elf.Section(dynamic.Value.Link);
        for (long entry = dynamic.Value.Offset; entry + 16 <= dynamic.Value.Offset + dynamic.Value.Size; entry += 16)
        {
            long tag = (long)elf.U64(entry);
            if (tag == DynamicNull)
            {
                break;
            }

            if (tag == DynamicNeeded)
            {
                result.Add(elf.String(strings, (uint)elf.U64(entry + 8)));
            }
        }
        return result;
    }

    /// <summary>
    /// Counts the relocations (<c>.rela.dyn</c>, <c>.rela.plt</c>, any REL/RELA section over <c>.dynsym</c>) whose
    /// symbol carries the given version index; each of them makes the loader look the versioned symbol up.
    /// </summary>
    public static int CountRelocationsUsingVersion(byte[] image, string fileName, ushort versionIndex)
    {
        var elf = new Elf(image, fileName);
        var dynsymIndex = elf.FindSectionIndex(SectionDynsym);
        var versym = elf.FindSection(SectionVersym);
        if (dynsymIndex < 0 || versym is null)
        {
            return 0;
        }

        int count = 0;
        for (int s = 0; s < elf.SectionCount; s++)
        {
            var section = elf.Section((uint)s);
            if ((section.Type != SectionRela && section.Type != SectionRel) || section.Link != dynsymIndex)
            {
                continue;
            }

            int entrySize = section.Type == SectionRela ? 24 : 16;
            for (long entry = section.Offset; entry + entrySize <= section.Offset + section.Size; entry += entrySize)
            {
                ulong symbol = elf.U64(entry + 8) >> 32;
                if (symbol == 0)
                {
                    continue;
                }

                long versymEntry = versym.Value.Offset + (long)symbol * 2;
                elf.Check(versymEntry, 2, versym.Value, ".gnu.version entry");
                if ((elf.U16(versymEntry) & 0x7fff) == versionIndex)
                {
                    count++;
                }
            }
        }
        return count;
    }

    /// <summary>
    /// Sets <c>VER_FLG_WEAK</c> on the (<paramref name="library"/>, <paramref name="version"/>) requirement, so that
    /// the loader accepts a <paramref name="library"/> lacking that version. Refuses when a relocation uses a symbol
    /// of that version (the library would then crash or fail later instead of now).
    /// </summary>
    /// <returns><see langword="true"/> if a byte changed; <see langword="false"/> if it was already weak.</returns>
    /// <exception cref="InvalidDataException">The image is not a well-formed 64-bit little-endian x86-64 ELF.</exception>
    /// <exception cref="InvalidOperationException">No such requirement, or patching it would be unsafe.</exception>
    public static bool MarkRequirementWeak(byte[] image, string fileName, string library, string version)
    {
        var requirement = ReadRequirements(image, fileName)
            .FirstOrDefault(r => r.Library == library && r.Version == version)
            ?? throw new InvalidOperationException(
                $"'{fileName}' has no requirement of version '{version}' from '{library}'.");
        if (requirement.IsWeak)
        {
            return false;
        }

        int relocations = CountRelocationsUsingVersion(image, fileName, requirement.Index);
        if (relocations > 0)
        {
            throw new InvalidOperationException(
                $"'{fileName}' cannot tolerate a '{library}' without version '{version}': {relocations} relocation(s) " +
                "use symbols of that version, so marking it weak would only move the failure to run time.");
        }

        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan((int)requirement.FlagsOffset, 2));
        BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)requirement.FlagsOffset, 2), (ushort)(flags | VersionFlagWeak));
        return true;
    }

    private readonly record struct SectionHeader(int Index, uint Type, long Offset, long Size, uint Link, uint Info);

    /// <summary>Bounds-checked view of the file; every read names the file when it goes wrong.</summary>
    private sealed class Elf
    {
        private readonly byte[] _image;
        private readonly string _fileName;
        private readonly long _sectionHeaders;

        public Elf(byte[] image, string fileName)
        {
            _image = image;
            _fileName = fileName;
            if (image.Length < 4 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
            {
                throw Invalid("it does not start with the ELF magic bytes 7F 45 4C 46");
            }

            if (image.Length < 64)
            {
                throw Invalid($"it is truncated: {image.Length} bytes, shorter than the 64-byte ELF64 header");
            }

            if (image[4] != 2)
            {
                throw Invalid($"EI_CLASS is {image[4]} ({(image[4] == 1 ? "32-bit" : "unknown")}), expected 2 (64-bit)");
            }

            if (image[5] != 1)
            {
                throw Invalid($"EI_DATA is {image[5]} ({(image[5] == 2 ? "big-endian" : "unknown")}), expected 1 (little-endian)");
            }

            ushort machine = U16(18);
            if (machine != MachineX86_64)
            {
                throw Invalid($"e_machine is {machine}, expected {MachineX86_64} (x86-64)");
            }

            _sectionHeaders = (long)U64(40);
            ushort entrySize = U16(58);
            SectionCount = U16(60);
            if (_sectionHeaders == 0)
            {
                throw Invalid("it has no section headers (e_shoff is 0)");
            }

            if (entrySize != 64)
            {
                throw Invalid($"e_shentsize is {entrySize}, expected 64");
            }

            if (SectionCount == 0)
            {
                // Extended numbering: the real count lives in section 0's sh_size.
                CheckFile(_sectionHeaders, 64, "section header 0");
                SectionCount = checked((int)U64(_sectionHeaders + 32));
            }
            CheckFile(_sectionHeaders, (long)SectionCount * 64, "the section header table");
        }

        public int SectionCount { get; }

        public SectionHeader Section(uint index)
        {
            if (index >= SectionCount)
            {
                throw Invalid($"it refers to section {index} but has only {SectionCount}");
            }

            long header = _sectionHeaders + index * 64L;
            var section = new SectionHeader((int)index, U32(header + 4), (long)U64(header + 24), (long)U64(header + 32),
                U32(header + 40), U32(header + 44));
            if (section.Type != 8) // SHT_NOBITS occupies no file space
            {
                CheckFile(section.Offset, section.Size, $"section {index}");
            }

            return section;
        }

        public int FindSectionIndex(uint type)
        {
            for (int i = 0; i < SectionCount; i++)
            {
                if (U32(_sectionHeaders + i * 64L + 4) == type)
                {
                    return i;
                }
            }
            return -1;
        }

        public SectionHeader? FindSection(uint type)
        {
            int index = FindSectionIndex(type);
            return index < 0 ? null : Section((uint)index);
        }

        public string String(SectionHeader table, uint offset)
        {
            if (offset >= table.Size)
            {
                throw Invalid($"a string offset {offset} lies outside its string table (size {table.Size})");
            }

            int start = checked((int)(table.Offset + offset));
            int end = Array.IndexOf(_image, (byte)0, start, (int)(table.Size - offset));
            if (end < 0)
            {
                throw Invalid($"the string at offset {offset} of section {table.Index} is not NUL-terminated");
            }

            return Encoding.ASCII.GetString(_image, start, end - start);
        }

        public void Check(long offset, long length, SectionHeader section, string what)
        {
            if (offset < section.Offset || offset + length > section.Offset + section.Size)
            {
                throw Invalid($"a {what} at offset {offset} lies outside section {section.Index}");
            }
        }

        public ushort U16(long offset) => BinaryPrimitives.ReadUInt16LittleEndian(Span(offset, 2));

        public uint U32(long offset) => BinaryPrimitives.ReadUInt32LittleEndian(Span(offset, 4));

        public ulong U64(long offset) => BinaryPrimitives.ReadUInt64LittleEndian(Span(offset, 8));

        private ReadOnlySpan<byte> Span(long offset, int length)
        {
            CheckFile(offset, length, "a field");
            return _image.AsSpan((int)offset, length);
        }

        private void CheckFile(long offset, long length, string what)
        {
            if (offset < 0 || length < 0 || offset + length > _image.Length)
            {
                throw Invalid($"it is truncated: {what} spans bytes {offset}..{offset + length} but the file has {_image.Length}");
            }
        }

        private InvalidDataException Invalid(string reason) =>
            new($"'{_fileName}' is not a valid 64-bit little-endian x86-64 ELF shared object: {reason}.");
    }
}
