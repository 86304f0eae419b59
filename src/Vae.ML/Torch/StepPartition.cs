using TorchSharp;

namespace Vae.ML.Torch;

/// <summary>
/// How the CPU training step's managed passes share the cores that libtorch's GEMMs use: a pass over <c>count</c>
/// items (rows, columns or elements) is cut into at most <see cref="MaxParts"/> contiguous ranges that depend on the
/// count alone, and <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/> runs them on at most
/// <see cref="Workers"/> threads, the caller among them. There are a few ranges per worker so that a thread that is
/// late or preempted (a busy machine) holds up the pass by one small range at most: the caller takes what is left.
/// </summary>
/// <remarks>
/// Deterministic by construction, not by luck: every item is computed by the same arithmetic whichever range holds
/// it (a row stays whole, so <c>TensorPrimitives</c>' vector bodies and tails fall where they did), and a sum across
/// items is never split: the callers either partition the other axis (bias sums by column, each column still summed
/// in row order) or keep per-row partial results and add them in row order afterwards. So a step gives the same bits
/// with one worker or two, and the same as the single-threaded step before this class existed.
/// </remarks>
internal sealed class StepPartition
{
    /// <summary>
    /// The least work (items × cost per item, roughly float operations) worth a second thread: below it the fork/join
    /// (a pool thread's wake-up, some microseconds) costs more than the range saves. A batch-1 step stays on one thread.
    /// </summary>
    public const int DefaultMinimumWork = 16_384;

    /// <summary>
    /// Floats in a 64-byte cache line: the alignment of a pass cut by columns that writes in place, so that two ranges
    /// never write into one line (false sharing made the bias sums 5–25 % slower on two threads).
    /// </summary>
    public const int FloatsPerCacheLine = 16;

    /// <summary>Ranges per worker when a pass is split (each still of at least the minimum work).</summary>
    public const int RangesPerWorker = 4;

    private readonly ParallelOptions _options;
    private readonly int _minimumWork;

    /// <summary>A partition into at most <paramref name="workers"/> ranges of at least <paramref name="minimumWork"/> work each.</summary>
    public StepPartition(int workers, int minimumWork = DefaultMinimumWork)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumWork, 1);
        Workers = workers;
        _minimumWork = minimumWork;
        _options = new ParallelOptions { MaxDegreeOfParallelism = workers };
    }

    /// <summary>Everything on the calling thread.</summary>
    public static StepPartition Serial { get; } = new(1);

    /// <summary>As many workers as libtorch has intra-op threads (the GEMMs' cores), at most one per logical CPU.</summary>
    public static StepPartition ForTorchThreads() => new(Math.Clamp(torch.get_num_threads(), 1, Environment.ProcessorCount));

    /// <summary>The most threads a pass runs on.</summary>
    public int Workers { get; }

    /// <summary>The most ranges a pass is cut into (one per thread-local scratch or partial result a caller keeps).</summary>
    public int MaxParts => Workers == 1 ? 1 : Workers * RangesPerWorker;

    /// <summary>
    /// Runs <paramref name="body"/>(part, start, end) over contiguous ranges covering [0, <paramref name="count"/>),
    /// part = 0 … <see cref="Parts"/> − 1 in item order (for per-range scratch or partial results; ranges run at the
    /// same time never share a part); every boundary but
    /// the last is a multiple of <paramref name="alignment"/> (a vector width keeps a vector loop's scalar tail where
    /// one thread would have it). <paramref name="costPerItem"/> weighs an item against the minimum work per range.
    /// </summary>
    public void For(int count, int costPerItem, Action<int, int, int> body, int alignment = 1)
    {
        var parts = Parts(count, costPerItem, alignment);
        if (parts <= 1)
        {
            body(0, 0, count);
            return;
        }

        Parallel.For(0, parts, _options, part => body(part, Bound(part, parts, count, alignment), Bound(part + 1, parts, count, alignment)));
    }

    /// <summary>How many ranges <see cref="For"/> cuts such a pass into.</summary>
    public int Parts(int count, int costPerItem, int alignment = 1)
    {
        var byWork = (long)count * costPerItem / _minimumWork;
        var byAlignment = count / alignment;
        return (int)Math.Max(1, Math.Min(MaxParts, Math.Min(byWork, byAlignment)));
    }

    /// <summary>The first item of range <paramref name="part"/> (<paramref name="count"/> for part = parts).</summary>
    private static int Bound(int part, int parts, int count, int alignment)
        => part == parts ? count : (int)((long)count * part / parts / alignment * alignment);
}
