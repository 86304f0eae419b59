using static TorchSharp.torch;

namespace Vae.ML.Data;

/// <summary>Training rows as the training loop sees them: either all in memory or read batch by batch.</summary>
internal interface ITrainingFeatures
{
    /// <summary>Values per row.</summary>
    int Width { get; }

    /// <summary>Number of rows.</summary>
    long Rows { get; }

    /// <summary>
    /// The rows in an order shuffled by <paramref name="seed"/>, in batches of at most <paramref name="batchSize"/> rows.
    /// A batch's array is reused for the next one: use it before moving on.
    /// </summary>
    IEnumerable<FeatureBatch> ReadShuffled(int batchSize, int seed);
}

/// <summary>A batch of rows: the first <see cref="Rows"/> × width values of <see cref="Values"/> are valid.</summary>
internal readonly record struct FeatureBatch(float[] Values, int Rows);

/// <summary>
/// Rows × width values held in one row-major CPU tensor. The rows are read straight into memory that libtorch
/// allocated, so a resident training set is this one copy: no managed array beside it, and no second copy when the
/// CPU trains on it (libtorch's 64-byte-aligned buffer is also what keeps MKL's rounding independent of where the
/// data came from).
/// </summary>
internal sealed class FeatureMatrix : ITrainingFeatures, IDisposable
{
    private FeatureMatrix(Tensor values, int rows, int width)
    {
        Values = values;
        Rows = rows;
        Width = width;
    }

    /// <summary>The rows × width tensor (CPU, Float32, contiguous); owned by this matrix.</summary>
    public Tensor Values { get; }

    public int Rows { get; }

    public int Width { get; }

    long ITrainingFeatures.Rows => Rows;

    /// <summary>An uninitialised matrix, filled through <see cref="RowSpan"/>.</summary>
    public static FeatureMatrix Allocate(int rows, int width)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        var values = empty(new long[] { rows, width }, ScalarType.Float32).DetachFromDisposeScope();
        return new FeatureMatrix(values, rows, width);
    }

    /// <summary>The most values one matrix holds: its memory is addressed as one span of bytes.</summary>
    public const long MaxValues = int.MaxValue / sizeof(float);

    /// <summary>Every value, row-major, in the tensor's own memory.</summary>
    public Span<float> AllValues => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Values.bytes);

    public Span<float> RowSpan(int start, int count) => AllValues.Slice(start * Width, count * Width);

    public IEnumerable<FeatureBatch> ReadShuffled(int batchSize, int seed)
    {
        var order = Enumerable.Range(0, Rows).ToArray();
        new Random(seed).Shuffle(order);
        var buffer = new float[Math.Min(batchSize, Rows) * Width];
        for (var start = 0; start < Rows; start += batchSize)
        {
            var count = Math.Min(batchSize, Rows - start);
            for (var i = 0; i < count; i++)
            {
                RowSpan(order[start + i], 1).CopyTo(buffer.AsSpan(i * Width, Width));
            }

            yield return new FeatureBatch(buffer, count);
        }
    }

    public void Dispose() => Values.Dispose();
}
