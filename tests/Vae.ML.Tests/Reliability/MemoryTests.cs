using System.Diagnostics;
using Microsoft.ML.Data;
using TorchSharp;

namespace Vae.ML.Tests.Reliability;

/// <summary>Scoring a long stream keeps memory flat: no tensor outlives its batch, no buffer grows with the row count.</summary>
public class MemoryTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    private const long MiB = 1024 * 1024;

    private readonly VaeTransformer _vae = fixture.Vae;

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
        // No allocator tuning: the library itself must keep the heap from growing (glibc's defaults on Linux).
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
