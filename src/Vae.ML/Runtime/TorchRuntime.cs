using System.Runtime.InteropServices;
using System.Runtime.Loader;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace Vae.ML.Runtime;

/// <summary>
/// Starts TorchSharp for Vae.ML: checks that a libtorch backend is deployed, applies the Linux native-loading fix
/// (<see cref="LibTorchSharpFix"/>) where needed, and proves TorchSharp works before anything else uses it.
/// </summary>
internal static class TorchRuntime
{
    private static readonly object Gate = new();
    private static volatile bool _initialized;
    private static IntPtr _patchedLibrary;

    /// <summary>
    /// Makes TorchSharp usable in this process. Must run before any TorchSharp type is touched: TorchSharp's
    /// static constructor loads the native library once, and a failure there cannot be undone. Thread-safe;
    /// after the first success it only reads a flag.
    /// </summary>
    /// <param name="logger">Receives what was done (which patched copy was loaded); optional.</param>
    /// <exception cref="TorchBackendException">No backend is deployed, or TorchSharp does not work here.</exception>
    public static void EnsureInitialized(ILogger? logger = null)
    {
        if (_initialized)
        {
            return;
        }

        lock (Gate)
        {
            if (_initialized)
            {
                return;
            }

            Initialize(logger ?? NullLogger.Instance);
            _initialized = true;
        }
    }

    private static void Initialize(ILogger logger)
    {
        // typeof() does not run torch's static constructor; only member access does.
        var torchSharp = typeof(torch).Assembly;
        var probeDirectories = LibTorchSharpFix.ProbeDirectories(Path.GetDirectoryName(torchSharp.Location) ?? string.Empty);

        if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64)
        {
            // Fail before TorchSharp's own fallback, which prints to the console and copies packages into the app folder.
            if (LibTorchSharpFix.FindBackend(probeDirectories) is null)
            {
                throw MissingBackend(probeDirectories, innerException: null);
            }

            if (LibTorchSharpFix.IsDisabledInThisProcess())
            {
                logger.LogInformation("Vae.ML native fix switched off ({Variable} or {Switch}); loading TorchSharp unchanged.",
                    LibTorchSharpFix.DisableEnvironmentVariable, LibTorchSharpFix.DisableAppContextSwitch);
            }
            else if (_patchedLibrary == IntPtr.Zero)
            {
                IntPtr handle = LibTorchSharpFix.Apply(probeDirectories, logger);
                if (handle != IntPtr.Zero)
                {
                    _patchedLibrary = handle;
                    // TorchSharp registers no resolver, but a DllImportResolver would not see its
                    // NativeLibrary.TryLoad("LibTorchSharp", assembly, ...) probe; this event sees both that and
                    // every [DllImport("LibTorchSharp")], after the normal search failed on the unpatched file.
                    (AssemblyLoadContext.GetLoadContext(torchSharp) ?? AssemblyLoadContext.Default).ResolvingUnmanagedDll +=
                        ResolveLibTorchSharp;
                }
            }
        }

        VerifyTorchSharpWorks(probeDirectories);
    }

    private static IntPtr ResolveLibTorchSharp(System.Reflection.Assembly requestingAssembly, string libraryName) =>
        libraryName is "LibTorchSharp" or LibTorchSharpFix.LibraryFileName ? _patchedLibrary : IntPtr.Zero;

    private static void VerifyTorchSharpWorks(IReadOnlyList<string> probeDirectories)
    {
        try
        {
            using var ones = torch.ones(2, 2);
            using var product = ones.matmul(ones);
            using var sum = product.sum();
            float total = sum.item<float>();
            if (total != 8f)
            {
                throw new InvalidOperationException($"ones(2,2) @ ones(2,2) summed to {total}, expected 8.");
            }
        }
        catch (Exception e) when (e is not TorchBackendException)
        {
            if (LibTorchSharpFix.FindBackend(probeDirectories) is null)
            {
                throw MissingBackend(probeDirectories, e);
            }

            var root = e;
            while (root.InnerException is not null)
            {
                root = root.InnerException;
            }

            string hint = LibTorchSharpFix.IsDisabledInThisProcess()
                ? $"The Vae.ML native fix is switched off ({LibTorchSharpFix.DisableEnvironmentVariable} / " +
                  $"{LibTorchSharpFix.DisableAppContextSwitch}); this system may need it."
                : "If the application used TorchSharp before Vae.ML, TorchSharp tried to load its native library " +
                  "without Vae.ML's fix, and that failure is final for the process.";
            throw new TorchBackendException(
                $"TorchSharp does not work in this process ({RuntimeInformation.OSDescription}). {hint} " +
                $"See docs/native-loading.md. TorchSharp said: {root.Message}", e);
        }
    }

    /// <summary>The plain-words error for an application that references no libtorch backend package.</summary>
    internal static TorchBackendException MissingBackend(IReadOnlyList<string> probeDirectories, Exception? innerException)
    {
        string message =
            "Vae.ML needs a libtorch backend, but this application references none (looked for " +
            $"{string.Join(" / ", LibTorchSharpFix.BackendFileNames)} in: {string.Join(", ", probeDirectories)}). " +
            "Add one package reference to the application project: for CPU, 'TorchSharp-cpu' (all platforms) or " +
            "only the one for your platform: 'libtorch-cpu-linux-x64', 'libtorch-cpu-win-x64' or " +
            "'libtorch-cpu-osx-arm64'; for NVIDIA GPUs, 'TorchSharp-cuda-linux' or 'TorchSharp-cuda-windows'.";
        return innerException is null ? new TorchBackendException(message) : new TorchBackendException(message, innerException);
    }
}
