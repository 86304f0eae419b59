namespace Vae.ML.Tests.Runtime;

/// <summary>Locates the real libLibTorchSharp.so shipped in the TorchSharp 0.107.0 package.</summary>
internal static class NativeTestFiles
{
    public static string LibTorchSharp()
    {
        string nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string[] candidates =
        [
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
            Path.Combine(nugetRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
        ];
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"libLibTorchSharp.so not found; looked at {string.Join(", ", candidates)}.");
    }

    /// <summary>A private copy in a fresh temp folder, so tests never touch the package or the app folder.</summary>
    public static string CopyToTemp(string source, out string directory)
    {
        directory = Directory.CreateTempSubdirectory("vae-ml-elf-test-").FullName;
        string copy = Path.Combine(directory, Path.GetFileName(source));
        File.Copy(source, copy);
        return copy;
    }
}
