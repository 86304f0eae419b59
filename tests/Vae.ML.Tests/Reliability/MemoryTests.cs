using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using TorchSharp;

namespace Vae.ML.Tests.Reliability;

/// <summary>Scoring a long stream keeps memory flat: no tensor outlives its batch, no buffer grows with the row count.</summary>
public class MemoryTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    private const long MiB = 1024 * 1024;

    private readonly VaeTransformer _vae = fixture.Vae;

    /// <summary>glibc's mallopt parameter for the size from which blocks are mmap'ed (and unmapped when freed).</summary>
    private const int MallocMmapThreshold = -3;

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    /// <summary>
    /// glibc raises its mmap threshold after the first large block is freed, so each batch's 256 KB tensor buffers then
    /// come from the brk heap, and small native objects that only .NET's finalizer frees can keep that heap from
    /// shrinking until a GC runs: resident memory then grows without anything leaking (docs/reliability.md). Pinning the
    /// threshold at glibc's default (128 KiB, what MALLOC_MMAP_THRESHOLD_=131072 does) measures the library, not that.
    /// </summary>
    private static void PinMmapThreshold()
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                Mallopt(MallocMmapThreshold, 128 * 1024);
            }
            catch (EntryPointNotFoundException)
            {
                // Not glibc: nothing to pin.
            }
        }
    }

    private static void Fill(long row, Span<float> features)
    {
        for (var j = 0; j < features.Length; j++)
        {
            features[j] = ((row * 31) + (j * 17)) % 101 / 100f;
        }
    }

    private static long ResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    /// <summary>Reads every output (and one input column, through the row buffer) of <paramref name="rows"/> rows.</summary>
    private long Pass(long rows, Action<long>? every65536Rows = null)
    {
        var scored = _vae.Transform(new RowSource(rows, Fill));
        var schema = scored.Schema;
        using var cursor = scored.GetRowCursor(schema);
        var index = cursor.GetGetter<long>(schema["Index"]);
        var latent = cursor.GetGetter<VBuffer<float>>(schema["Latent"]);
        var logVariance = cursor.GetGetter<VBuffer<float>>(schema["LatentLogVariance"]);
        var reconstruction = cursor.GetGetter<VBuffer<float>>(schema["Reconstruction"]);
        var score = cursor.GetGetter<float>(schema["Score"]);
        VBuffer<float> buffer = default;
        long i = 0, read = 0;
        var s = 0f;
        var sum = 0.0;
        while (cursor.MoveNext())
        {
            index(ref i);
            latent(ref buffer);
            logVariance(ref buffer);
            reconstruction(ref buffer);
            score(ref s);
            sum += s;
            if ((++read & 0xFFFF) == 0)
            {
                every65536Rows?.Invoke(read);
            }
        }

        double.IsFinite(sum).Should().BeTrue();
        return read;
    }

    [Fact]
    public void Transforming_a_million_rows_grows_memory_by_less_than_50_MB_and_leaves_no_tensor_alive()
    {
        PinMmapThreshold();
        // Warm-up: JIT, libtorch's thread pools and allocator caches, the batch buffers of a first cursor.
        Pass(20_000).Should().Be(20_000);
        var tensorsBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var baseline = ResidentBytes();
        var peak = baseline;

        var samples = new List<long>();
        var read = Pass(1_000_000, _ =>
        {
            using var process = Process.GetCurrentProcess();
            peak = Math.Max(peak, process.WorkingSet64);
            samples.Add(process.WorkingSet64 / MiB);
        });

        var after = ResidentBytes();
        read.Should().Be(1_000_000);
        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(tensorsBefore, "every tensor of a forward pass is disposed with its batch");
        (after - baseline).Should().BeLessThan(50 * MiB, $"resident memory went from {baseline / MiB} MiB to {after / MiB} MiB (every 65,536 rows: {string.Join(", ", samples)} MiB)");
        (peak - baseline).Should().BeLessThan(50 * MiB, $"resident memory peaked at {peak / MiB} MiB from {baseline / MiB} MiB (every 65,536 rows: {string.Join(", ", samples)} MiB)");
    }
}
