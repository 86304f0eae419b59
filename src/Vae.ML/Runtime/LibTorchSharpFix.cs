using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Vae.ML.Runtime;

/// <summary>
/// Makes TorchSharp's <c>libLibTorchSharp.so</c> loadable on Linux systems whose libstdc++ is older than the one it
/// was built against (Debian 12, Ubuntu 22.04), by loading a copy whose unneeded version requirements are marked weak.
/// See docs/native-loading.md.
/// </summary>
internal static class LibTorchSharpFix
{
    /// <summary>Environment variable that switches the fix off when set to <c>1</c> or <c>true</c>.</summary>
    public const string DisableEnvironmentVariable = "VAE_ML_DISABLE_NATIVE_FIX";

    /// <summary>AppContext switch (runtimeconfig / <c>RuntimeHostConfigurationOption</c>) that switches the fix off.</summary>
    public const string DisableAppContextSwitch = "Vae.ML.DisableNativeFix";

    /// <summary>The file TorchSharp's <c>[DllImport("LibTorchSharp")]</c> resolves to on Linux.</summary>
    public const string LibraryFileName = "libLibTorchSharp.so";

    /// <summary>File names that show a libtorch backend (CPU or CUDA) is deployed, per platform.</summary>
    public static IReadOnlyList<string> BackendFileNames { get; } =
        OperatingSystem.IsWindows() ? ["torch_cpu.dll", "torch_cuda.dll"]
        : OperatingSystem.IsMacOS() ? ["libtorch_cpu.dylib"]
        : ["libtorch_cpu.so", "libtorch_cuda.so"];

    /// <summary>Whether the user switched the fix off (either way of doing so suffices).</summary>
    public static bool IsDisabled(string? environmentValue, bool appContextSwitch) =>
        appContextSwitch
        || string.Equals(environmentValue?.Trim(), "1", StringComparison.Ordinal)
        || string.Equals(environmentValue?.Trim(), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads both switches of the current process.</summary>
    public static bool IsDisabledInThisProcess() =>
        IsDisabled(
            Environment.GetEnvironmentVariable(DisableEnvironmentVariable),
            AppContext.TryGetSwitch(DisableAppContextSwitch, out bool disabled) && disabled);

    /// <summary>
    /// The directories the runtime searches for TorchSharp's native libraries, in the runtime's order: the
    /// deps.json native directories first, then TorchSharp's own folder and the app folder (with their
    /// runtimes/&lt;rid&gt;/native subfolders, where framework-dependent builds place native assets).
    /// </summary>
    public static IReadOnlyList<string> ProbeDirectories(string torchSharpAssemblyDirectory)
    {
        var directories = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchDirectories)
        {
            directories.AddRange(searchDirectories.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        string rid = RuntimeInformation.RuntimeIdentifier;
        foreach (string baseDirectory in new[] { torchSharpAssemblyDirectory, AppContext.BaseDirectory })
        {
            if (string.IsNullOrEmpty(baseDirectory))
            {
                continue;
            }

            directories.Add(baseDirectory);
            directories.Add(Path.Combine(baseDirectory, "runtimes", rid, "native"));
            if (OperatingSystem.IsLinux())
            {
                directories.Add(Path.Combine(baseDirectory, "runtimes", "linux-x64", "native"));
            }
        }
        return directories
            .Select(d => Path.TrimEndingDirectorySeparator(Path.GetFullPath(d)))
            .Distinct(StringComparer.Ordinal)
            .Where(Directory.Exists)
            .ToList();
    }

    /// <summary>The first <paramref name="fileName"/> found in <paramref name="directories"/>, or null.</summary>
    public static string? FindFile(IEnumerable<string> directories, string fileName) =>
        directories.Select(d => Path.Combine(d, fileName)).FirstOrDefault(File.Exists);

    /// <summary>The first libtorch backend library found in <paramref name="directories"/>, or null.</summary>
    public static string? FindBackend(IEnumerable<string> directories) =>
        BackendFileNames.Select(name => FindFile(directories, name)).FirstOrDefault(path => path is not null);

    /// <summary>
    /// The requirements not already weak whose library is known (<paramref name="definedVersionsOf"/> returns
    /// non-null) but does not define the version.
    /// </summary>
    public static IReadOnlyList<ElfVersionRequirement> FindMissingVersions(
        IEnumerable<ElfVersionRequirement> requirements, Func<string, IReadOnlySet<string>?> definedVersionsOf) =>
        requirements
            .Where(r => !r.IsWeak && definedVersionsOf(r.Library) is { } defined && !defined.Contains(r.Version))
            .ToList();

    /// <summary>
    /// Where the process gets <paramref name="soname"/> from: the copy already mapped into this process (what the
    /// loader will bind to), else the first one in the usual system library folders; null if none is found.
    /// </summary>
    public static string? FindSystemLibrary(string soname)
    {
        const string maps = "/proc/self/maps";
        if (File.Exists(maps))
        {
            foreach (string line in File.ReadLines(maps))
            {
                int slash = line.IndexOf('/');
                if (slash < 0)
                {
                    continue;
                }

                string path = line[slash..];
                // The mapped file is the real one (libstdc++.so.6.0.30), the soname its prefix (libstdc++.so.6).
                if (Path.GetFileName(path).StartsWith(soname, StringComparison.Ordinal) && File.Exists(path))
                {
                    return path;
                }
            }
        }
        string[] systemDirectories =
        [
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
        ];
        return FindFile(systemDirectories, soname);
    }

    /// <summary>
    /// Where patched copies live: <c>$XDG_CACHE_HOME/vae-ml/native</c>, else <c>~/.cache/vae-ml/native</c>; the
    /// per-user temp folder is the fallback the caller uses when those cannot be written.
    /// </summary>
    public static IReadOnlyList<string> CacheRoots()
    {
        var roots = new List<string>();
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg))
        {
            roots.Add(Path.Combine(xdg, "vae-ml", "native"));
        }

        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(home))
        {
            roots.Add(Path.Combine(home, ".cache", "vae-ml", "native"));
        }

        roots.Add(Path.Combine(Path.GetTempPath(), $"vae-ml-{Environment.UserName}", "native"));
        return roots.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Writes <paramref name="patched"/> to <c>&lt;root&gt;/&lt;sha256 of original&gt;/libLibTorchSharp.so</c>
    /// unless an identical file is already there. Written to a temporary file and renamed, so a concurrent
    /// process never sees a half-written library.
    /// </summary>
    [SupportedOSPlatform("linux")]
    public static string PlacePatchedCopy(string cacheRoot, string originalSha256, byte[] patched)
    {
        string directory = Path.Combine(Path.GetFullPath(cacheRoot), originalSha256);
        // Owner-only: nobody else may swap the library this process is about to load.
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // Our folders (<sha>, native, and vae-ml or vae-ml-<user> above it) must not let others swap the file.
        string topFolder = Path.GetDirectoryName(Path.GetFullPath(cacheRoot)) ?? cacheRoot;
        for (string? folder = directory; folder is not null; folder = Path.GetDirectoryName(folder))
        {
            if ((File.GetUnixFileMode(folder) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            {
                throw new UnauthorizedAccessException($"'{folder}' is writable by other users; not loading native code from it.");
            }

            if (folder == topFolder)
            {
                break;
            }
        }
        string path = Path.Combine(directory, LibraryFileName);
        if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(patched))
        {
            return path;
        }

        string temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(patched);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
        return path;
    }

    /// <summary>
    /// Checks <c>libLibTorchSharp.so</c> against the system's libraries and, when versions are missing that it
    /// does not really use, loads a patched copy (its libtorch dependencies first, from the probed folders).
    /// </summary>
    /// <returns>The handle of the loaded patched copy, or <see cref="IntPtr.Zero"/> when no fix was needed.</returns>
    /// <exception cref="TorchBackendException">A missing version is really used, or the copy does not load.</exception>
    [SupportedOSPlatform("linux")]
    public static IntPtr Apply(IReadOnlyList<string> probeDirectories, ILogger logger)
    {
        string? original = FindFile(probeDirectories, LibraryFileName);
        if (original is null)
        {
            logger.LogDebug("Vae.ML native fix: {Library} not found in {Directories}; nothing to check.",
                LibraryFileName, string.Join(Path.PathSeparator, probeDirectories));
            return IntPtr.Zero;
        }

        byte[] image = File.ReadAllBytes(original);
        var requirements = ElfVersionPatcher.ReadRequirements(image, original);
        var systemLibraries = new Dictionary<string, string?>(StringComparer.Ordinal);
        var missing = FindMissingVersions(requirements, library =>
        {
            string? path = FindSystemLibrary(library);
            systemLibraries[library] = path;
            return path is null ? null : ElfVersionPatcher.ReadDefinedVersions(File.ReadAllBytes(path), path);
        });
        if (missing.Count == 0)
        {
            logger.LogDebug("Vae.ML native fix: the system provides every version {Library} requires; loading it unchanged.", original);
            return IntPtr.Zero;
        }

        string missingText = string.Join(", ", missing.Select(m => $"{m.Version} from {systemLibraries[m.Library]}"));
        byte[] patched = (byte[])image.Clone();
        foreach (var requirement in missing)
        {
            try
            {
                ElfVersionPatcher.MarkRequirementWeak(patched, original, requirement.Library, requirement.Version);
            }
            catch (InvalidOperationException e)
            {
                throw new TorchBackendException(
                    $"TorchSharp's native library '{original}' needs {missingText}, which this system lacks, and really " +
                    $"uses it ({e.Message}). Run on a newer Linux distribution (glibc/libstdc++ at least as new as " +
                    "TorchSharp's build machine) or use a TorchSharp version built for this one.", e);
            }
        }

        string sha256 = Convert.ToHexString(SHA256.HashData(image)).ToLowerInvariant();
        string? copy = null;
        var placementErrors = new List<Exception>();
        foreach (string root in CacheRoots())
        {
            try
            {
                copy = PlacePatchedCopy(root, sha256, patched);
                break;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                placementErrors.Add(e);
            }
        }
        if (copy is null)
        {
            throw new TorchBackendException(
                $"Could not write the patched copy of '{original}' to any of {string.Join(", ", CacheRoots())}. " +
                $"Make one of them writable, or set {DisableEnvironmentVariable}=1 if this system needs no fix.",
                new AggregateException(placementErrors));
        }

        try
        {
            // The copy lives away from libtorch; libraries already loaded satisfy its DT_NEEDED entries by soname.
            foreach (string needed in ElfVersionPatcher.ReadNeededLibraries(image, original))
            {
                if (FindFile(probeDirectories, needed) is { } dependency)
                {
                    NativeLibrary.Load(dependency);
                }
            }
            IntPtr handle = NativeLibrary.Load(copy);
            logger.LogInformation(
                "Vae.ML native fix: this system lacks {Missing}, which {Library} requires but never binds; loaded the patched copy {Copy} instead.",
                missingText, original, copy);
            return handle;
        }
        catch (DllNotFoundException e)
        {
            throw new TorchBackendException(
                $"The patched copy '{copy}' of '{original}' (weakened: {missingText}) did not load: {e.Message}", e);
        }
    }
}
