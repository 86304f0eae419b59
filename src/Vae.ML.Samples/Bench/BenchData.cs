using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Datasets;

namespace Vae.ML.Samples.Bench;

/// <summary>The images the bench trains and scores on: MNIST when available, else a seeded synthetic stand-in.</summary>
/// <param name="Train">Training images, row-major, <paramref name="Width"/> values per row in [0, 1].</param>
/// <param name="Test">Test images for extraction and single-row prediction.</param>
/// <param name="Width">Values per row (784 for MNIST).</param>
/// <param name="Source">Where the images came from, for the report.</param>
internal sealed record BenchImages(float[] Train, float[] Test, int Width, string Source)
{
    /// <summary>Number of training rows.</summary>
    public int TrainRows => Train.Length / Width;

    /// <summary>Number of test rows.</summary>
    public int TestRows => Test.Length / Width;

    /// <summary>MNIST (train and test) from the usual cache or download (Vae.ML.Datasets).</summary>
    public static BenchImages Mnist(string? dataDirectory, Microsoft.Extensions.Logging.ILogger? logger)
    {
        MnistImages train = Datasets.Mnist.LoadImages(MnistSplit.Train, dataDirectory, logger);
        MnistImages test = Datasets.Mnist.LoadImages(MnistSplit.Test, dataDirectory, logger);
        return new BenchImages(train.Pixels, test.Pixels, train.PixelsPerImage, "MNIST");
    }

    /// <summary>
    /// Blurry strokes on a 28x28 canvas from a fixed seed: the same shape and value range as MNIST, so that every
    /// measured cost (GEMMs, elementwise, data) is the same; for machines without MNIST and for the quick mode.
    /// </summary>
    public static BenchImages Synthetic(int trainRows, int testRows, int seed = 0)
    {
        const int side = 28, width = side * side;
        var random = new Random(seed);
        float[] Make(int rows)
        {
            var pixels = new float[rows * width];
            for (int r = 0; r < rows; r++)
            {
                double cx = 8 + random.NextDouble() * 12, cy = 8 + random.NextDouble() * 12, angle = random.NextDouble() * Math.PI;
                double dx = Math.Cos(angle), dy = Math.Sin(angle);
                for (int y = 0; y < side; y++)
                {
                    for (int x = 0; x < side; x++)
                    {
                        // Distance to a line through (cx, cy): a stroke about two pixels wide.
                        double distance = Math.Abs((x - cx) * dy - (y - cy) * dx);
                        double along = Math.Abs((x - cx) * dx + (y - cy) * dy);
                        pixels[r * width + y * side + x] = along < 9 ? (float)Math.Clamp(1.5 - distance, 0, 1) : 0f;
                    }
                }
            }

            return pixels;
        }

        return new BenchImages(Make(trainRows), Make(testRows), width, "synthetic strokes (no MNIST)");
    }
}

/// <summary>Input row for <see cref="PredictionEngine{TSrc, TDst}"/>: one image.</summary>
internal sealed class ImageInput
{
    /// <summary>The pixels; the vector size is set through a schema definition at run time.</summary>
    public float[] Features { get; set; } = [];
}

/// <summary>Output row for <see cref="PredictionEngine{TSrc, TDst}"/>: the latent mean only.</summary>
internal sealed class LatentOutput
{
    /// <summary>μ of the image.</summary>
    public float[] Latent { get; set; } = [];
}

/// <summary>
/// A lazy <see cref="IDataView"/> of <c>rows</c> rows that cycles over a source matrix: row i is source row
/// i mod n. Nothing is materialised, so its memory does not grow with <c>rows</c> (the streaming measure needs
/// exactly that), and one source serves every size of the scaling runs. Its per-row code is compiled optimized from
/// the first call, like the library's cursor: the extraction measure times the library, not this stand-in source's
/// tier-0 warm-up (it ran unoptimized through the 1,000- and 10,000-row points; docs/performance.md).
/// </summary>
internal sealed class CyclingImagesView : IDataView
{
    private readonly float[] _source;
    private readonly int _width;
    private readonly int _sourceRows;
    private readonly long _rows;

    /// <summary>A view of <paramref name="rows"/> rows over <paramref name="source"/>.</summary>
    public CyclingImagesView(float[] source, int width, long rows)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        if (source.Length == 0 || source.Length % width != 0)
        {
            throw new ArgumentException($"The source holds {source.Length} values, not a positive multiple of {width}.", nameof(source));
        }

        _source = source;
        _width = width;
        _sourceRows = source.Length / width;
        _rows = rows;
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(Datasets.Mnist.FeaturesColumnName, new VectorDataViewType(NumberDataViewType.Single, width));
        Schema = builder.ToSchema();
    }

    /// <inheritdoc />
    public bool CanShuffle => false;

    /// <inheritdoc />
    public DataViewSchema Schema { get; }

    /// <inheritdoc />
    public long? GetRowCount() => _rows;

    /// <inheritdoc />
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new Cursor(this, columnsNeeded.Any());

    /// <inheritdoc />
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor(CyclingImagesView parent, bool active) : DataViewRowCursor
    {
        private long _position = -1;

        public override DataViewSchema Schema => parent.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public override bool MoveNext()
        {
            if (_position + 1 < parent._rows)
            {
                _position++;
                return true;
            }

            _position = -1;
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() =>
            (ref DataViewRowId value) => value = new DataViewRowId((ulong)_position, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) => active && column.Index == 0;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
            {
                throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            }

            ValueGetter<VBuffer<float>> getter = [MethodImpl(MethodImplOptions.AggressiveOptimization)] (ref VBuffer<float> value) =>
            {
                if (_position < 0)
                {
                    throw new InvalidOperationException("The cursor is not on a row.");
                }

                int row = (int)(_position % parent._sourceRows);
                var editor = VBufferEditor.Create(ref value, parent._width);
                parent._source.AsSpan(row * parent._width, parent._width).CopyTo(editor.Values);
                value = editor.Commit();
            };
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' holds VBuffer<Single>, not {typeof(TValue).Name}.");
        }
    }
}
