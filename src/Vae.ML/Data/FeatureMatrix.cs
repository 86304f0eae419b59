namespace Vae.ML.Data;

/// <summary>Training rows as the training loop sees them: either all in memory or read batch by batch.</summary>
internal interface ITrainingFeatures
{
    /// <summary>Values per row.</summary>
    int Width { get; }

    /// <summary>Number of rows.</summary>
    long Rows { get; }

    /// <summary>The rows in an order shuffled by <paramref name="seed"/>, in batches of at most <paramref name="batchSize"/> rows.</summary>
    IEnumerable<FeatureBatch> ReadShuffled(int batchSize, int seed);
}

/// <summary>A batch of rows: the first <see cref="Rows"/> × width values of <see cref="Values"/> are valid.</summary>
internal readonly record struct FeatureBatch(float[] Values, int Rows);

/// <summary>Rows × width values held in one row-major array.</summary>
internal sealed class FeatureMatrix : ITrainingFeatures
{
    public FeatureMatrix(float[] values, int rows, int width)
    {
        if ((long)rows * width != values.LongLength)
        {
            throw new ArgumentException($"Expected {rows} × {width} values, got {values.LongLength}.", nameof(values));
        }

        Values = values;
        Rows = rows;
        Width = width;
    }

    public float[] Values { get; }

    public int Rows { get; }

    public int Width { get; }

    long ITrainingFeatures.Rows => Rows;

    public ReadOnlySpan<float> RowSpan(int start, int count) => Values.AsSpan(start * Width, count * Width);

    public IEnumerable<FeatureBatch> ReadShuffled(int batchSize, int seed)
    {
        var order = Enumerable.Range(0, Rows).ToArray();
        new Random(seed).Shuffle(order);
        for (var start = 0; start < Rows; start += batchSize)
        {
            var count = Math.Min(batchSize, Rows - start);
            var buffer = new float[count * Width];
            for (var i = 0; i < count; i++)
            {
                RowSpan(order[start + i], 1).CopyTo(buffer.AsSpan(i * Width, Width));
            }

            yield return new FeatureBatch(buffer, count);
        }
    }
}
