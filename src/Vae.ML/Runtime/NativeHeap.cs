using System.Runtime.InteropServices;

namespace Vae.ML.Runtime;

/// <summary>
/// The C runtime's heap, where libtorch allocates tensors. With glibc, memory that libtorch frees in the middle of
/// the heap stays resident until the heap is trimmed: a long scoring pass, whose per-batch temporaries (the per-row
/// loss above all) fragment the heap, then grows RSS without holding more memory. <see cref="ReleaseFreePages"/>
/// hands the free pages back (glibc's <c>malloc_trim</c>); elsewhere it does nothing.
/// </summary>
internal static partial class NativeHeap
{
    private static int _unavailable;

    /// <summary>Returns the heap's free pages to the system; a no-op where the C library is not glibc.</summary>
    public static void ReleaseFreePages()
    {
        if (!OperatingSystem.IsLinux() || Volatile.Read(ref _unavailable) != 0)
        {
            return;
        }

        try
        {
            _ = MallocTrim(0);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            // Not glibc (musl has neither libc.so.6 nor malloc_trim): nothing to release.
            Volatile.Write(ref _unavailable, 1);
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
