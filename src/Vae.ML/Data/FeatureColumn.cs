using System.Globalization;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Data;

/// <summary>Reads and checks the float-vector column a VAE is trained on or applied to.</summary>
internal static class FeatureColumn
{
    /// <summary>
    /// Returns the vector size of <paramref name="columnName"/>, which must be a known-size vector of <see cref="float"/>.
    /// </summary>
    public static int GetVectorSize(DataViewSchema schema, string columnName, string optionName)
    {
        var column = schema.GetColumnOrNull(columnName)
            ?? throw new ArgumentOutOfRangeException(optionName, columnName,
                $"Input column '{columnName}' ({optionName}) was not found. Columns present: {string.Join(", ", schema.Select(c => c.Name))}.");
        return GetVectorSize(column.Name, column.Type, optionName);
    }

    public static int GetVectorSize(string columnName, DataViewType type, string optionName)
    {
        if (type is not VectorDataViewType vector || vector.ItemType != NumberDataViewType.Single || !vector.IsKnownSize)
        {
            throw new ArgumentOutOfRangeException(optionName, columnName,
                $"Input column '{columnName}' ({optionName}) must be a known-size vector of Single (e.g. Vector<Single, 784>), but is {type}.");
        }

        return vector.Size;
    }

    /// <summary>Number of rows, counted with a cursor when the view does not know it.</summary>
    public static long CountRows(IDataView data, Action throwIfCancelled, string dataName = "The data")
    {
        var known = data.GetRowCount();
        if (known is long count)
        {
            return count;
        }

        long rows = 0;
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        while (Advance(cursor, null, rows, $"{dataName} (counting its rows)", ""))
        {
            if ((rows & 0xFFF) == 0)
            {
                throwIfCancelled();
            }

            rows++;
        }

        return rows;
    }

    /// <summary>
    /// Reads every row of the column into one matrix (the caller disposes it), checking that values are finite (and within [0, 1] for the
    /// Bernoulli likelihood).
    /// </summary>
    public static FeatureMatrix ReadAll(IDataView data, string columnName, int width, long rows, string dataName, Action throwIfCancelled,
        VaeLikelihood likelihood = VaeLikelihood.Bernoulli)
    {
        if (rows * width > FeatureMatrix.MaxValues)
        {
            throw new ArgumentException(
                $"{dataName} has {rows} rows of {width} values: more than the {FeatureMatrix.MaxValues} values one in-memory matrix holds. " +
                $"Lower {nameof(VaeOptions.MaxInMemoryBytes)} to train on it streamed.");
        }

        // Read straight into the tensor the training loop will use; freed here when the data view fails midway.
        var matrix = FeatureMatrix.Allocate((int)rows, width);
        try
        {
            var read = 0;
            foreach (var row in ReadRows(data, columnName, width, dataName, throwIfCancelled, likelihood: likelihood))
            {
                if (read >= rows)
                {
                    throw new InvalidOperationException($"{dataName} returned more rows than the {rows} it reported.");
                }

                row.CopyTo(matrix.RowSpan(read, 1));
                read++;
            }

            if (read != rows)
            {
                throw new InvalidOperationException($"{dataName} returned {read} rows, not the {rows} it reported.");
            }

            return matrix;
        }
        catch
        {
            matrix.Dispose();
            throw;
        }
    }

    /// <summary>Streams the column row by row (dense, validated). The span is reused between rows.</summary>
    public static IEnumerable<float[]> ReadRows(IDataView data, string columnName, int width, string dataName, Action throwIfCancelled, Random? shuffle = null,
        VaeLikelihood likelihood = VaeLikelihood.Bernoulli)
    {
        var column = data.Schema[columnName];
        using var cursor = data.GetRowCursor(new[] { column }, shuffle);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        var buffer = default(VBuffer<float>);
        var dense = new float[width];
        long index = 0;
        Action read = () => getter(ref buffer);
        while (Advance(cursor, read, index, dataName, columnName))
        {
            if ((index & 0xFF) == 0)
            {
                throwIfCancelled();
            }

            CopyValidated(buffer, dense, columnName, index, dataName, likelihood);
            yield return dense;
            index++;
        }
    }

    /// <summary>
    /// Moves the cursor on and reads the row; an exception from the data view (a failing file, a user's enumerable)
    /// surfaces with what was being read and how many rows had been read, its original exception as the inner one.
    /// </summary>
    private static bool Advance(DataViewRowCursor cursor, Action? read, long rowsRead, string what, string columnName)
    {
        try
        {
            if (!cursor.MoveNext())
            {
                return false;
            }

            read?.Invoke();
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var column = columnName.Length == 0 ? "" : $", column '{columnName}'";
            throw new InvalidOperationException(
                $"{what}{column}: the data view failed after {rowsRead} rows were read ({e.GetType().Name}: {e.Message}).", e);
        }
    }

    /// <summary>
    /// Copies one row (dense or sparse) into <paramref name="dense"/> and checks that it has the right length and only
    /// finite values, in [0, 1] for the Bernoulli likelihood (training data); errors name the data, column, row and element.
    /// </summary>
    public static void CopyValidated(in VBuffer<float> buffer, Span<float> dense, string columnName, long row, string dataName,
        VaeLikelihood likelihood = VaeLikelihood.Bernoulli)
    {
        CopyDense(buffer, dense, columnName, row, dataName);
        Validate(dense, columnName, row, dataName, likelihood);
    }

    /// <summary>
    /// Copies one row (dense or sparse) into <paramref name="dense"/>, checking only its length: scoring takes every
    /// value as it is (see <see cref="Classify"/>). A wrong length breaks the column's declared type, so it throws.
    /// </summary>
    public static void CopyDense(in VBuffer<float> buffer, Span<float> dense, string columnName, long row, string dataName)
    {
        if (buffer.Length != dense.Length)
        {
            throw new ArgumentException($"{dataName}, column '{columnName}', row {row}: vector has {buffer.Length} values; expected {dense.Length}.");
        }

        var values = buffer.GetValues();
        if (buffer.IsDense)
        {
            values.CopyTo(dense);
        }
        else
        {
            dense.Clear();
            var indices = buffer.GetIndices();
            for (var i = 0; i < indices.Length; i++)
            {
                dense[indices[i]] = values[i];
            }
        }
    }

    /// <summary>
    /// <see cref="CopyDense"/> and <see cref="Classify"/> of the copied row in one pass: the values are checked while
    /// they are copied (a scoring cursor does this for every row, so a second pass over each batch is saved). A row
    /// whose values are all in range (finite, and in [0, 1] with <paramref name="unitRange"/>) is known after the copy;
    /// any other row is classified by <see cref="Classify"/>, so both give the same answer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static RowValues CopyDenseClassified(in VBuffer<float> buffer, Span<float> dense, bool unitRange, string columnName, long row, string dataName)
    {
        if (!buffer.IsDense || buffer.Length != dense.Length)
        {
            CopyDense(buffer, dense, columnName, row, dataName);
            return Classify(dense, unitRange);
        }

        var values = buffer.GetValues();
        var inRange = unitRange ? CopyCheckingUnitRange(values, dense) : CopyCheckingFinite(values, dense);
        return inRange ? RowValues.InRange : Classify(dense, unitRange);
    }

    /// <summary>Copies <paramref name="source"/>; true when every value is in [0, 1] (NaN compares false).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool CopyCheckingUnitRange(ReadOnlySpan<float> source, Span<float> destination)
    {
        var i = 0;
        var all = true;
        if (Vector.IsHardwareAccelerated)
        {
            var inside = Vector<int>.AllBitsSet;
            for (; i <= source.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(source[i..]);
                v.CopyTo(destination[i..]);
                inside &= Vector.GreaterThanOrEqual(v, Vector<float>.Zero) & Vector.LessThanOrEqual(v, Vector<float>.One);
            }

            all = inside == Vector<int>.AllBitsSet;
        }

        for (; i < source.Length; i++)
        {
            var v = destination[i] = source[i];
            all &= IsInTrainingRange(v);
        }

        return all;
    }

    /// <summary>Copies <paramref name="source"/>; true when every value is finite (v − v is 0 exactly then, NaN otherwise).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool CopyCheckingFinite(ReadOnlySpan<float> source, Span<float> destination)
    {
        var i = 0;
        var all = true;
        if (Vector.IsHardwareAccelerated)
        {
            var finite = Vector<int>.AllBitsSet;
            for (; i <= source.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(source[i..]);
                v.CopyTo(destination[i..]);
                finite &= Vector.Equals(v - v, Vector<float>.Zero);
            }

            all = finite == Vector<int>.AllBitsSet;
        }

        for (; i < source.Length; i++)
        {
            var v = destination[i] = source[i];
            all &= float.IsFinite(v);
        }

        return all;
    }

    /// <summary>True for the values the Bernoulli (BCE) model is trained on: finite and within [0, 1].</summary>
    public static bool IsInTrainingRange(float value) => value >= 0f && value <= 1f;

    /// <summary>
    /// Where a row's values lie relative to the training range (vectorised: this runs for every scored row). Without
    /// <paramref name="unitRange"/> (the Gaussian likelihood, whose range is every finite value) a row is never OutOfRange.
    /// </summary>
    public static RowValues Classify(ReadOnlySpan<float> row, bool unitRange = true)
    {
        if (row.IsEmpty)
        {
            return RowValues.InRange;
        }

        // Min and Max return NaN when any value is NaN.
        var min = TensorPrimitives.Min(row);
        var max = TensorPrimitives.Max(row);
        if (!float.IsFinite(min) || !float.IsFinite(max))
        {
            return RowValues.NotFinite;
        }

        return !unitRange || (IsInTrainingRange(min) && IsInTrainingRange(max)) ? RowValues.InRange : RowValues.OutOfRange;
    }

    private static void Validate(ReadOnlySpan<float> row, string columnName, long rowIndex, string dataName, VaeLikelihood likelihood)
    {
        for (var i = 0; i < row.Length; i++)
        {
            var v = row[i];
            if (likelihood == VaeLikelihood.Gaussian && !float.IsFinite(v))
            {
                throw new ArgumentException(
                    $"{dataName}, column '{columnName}', row {rowIndex}, element {i}: the value is {(float.IsNaN(v) ? "NaN" : v > 0 ? "+infinity" : "-infinity")}. " +
                    "Training needs finite values: filter out rows with missing values (FilterRowsByMissingValues) or replace them (ReplaceMissingValues).");
            }

            if (likelihood == VaeLikelihood.Bernoulli && !IsInTrainingRange(v))
            {
                var problem = float.IsNaN(v) ? "is NaN"
                    : float.IsInfinity(v) ? $"is {(v > 0 ? "+" : "-")}infinity"
                    : $"{v.ToString(CultureInfo.InvariantCulture)} is outside [0, 1]";
                throw new ArgumentException(
                    $"{dataName}, column '{columnName}', row {rowIndex}, element {i}: the value {problem}. " +
                    "Training needs finite values in [0, 1] (the VAE's binary cross-entropy is defined only there): scale pixels by 1/255, " +
                    "add NormalizeMinMax before the VAE, use Likelihood = VaeLikelihood.Gaussian for real-valued features, " +
                    "or filter out rows with missing values (FilterRowsByMissingValues).");
            }
        }
    }
}

/// <summary>Where a row's values lie relative to the range [0, 1] the model is trained on.</summary>
internal enum RowValues
{
    /// <summary>All values finite and within [0, 1].</summary>
    InRange,

    /// <summary>All values finite, some outside [0, 1]: scored as they are (the Score is then large).</summary>
    OutOfRange,

    /// <summary>Some value NaN or infinite: the row's outputs are NaN.</summary>
    NotFinite,
}

/// <summary>
/// Training rows read from the IDataView batch by batch, for data too large to hold in memory. Each epoch reads a
/// cursor (shuffled by the view when it can) and shuffles again within a pool of <see cref="PoolBatches"/> batches.
/// </summary>
internal sealed class StreamedFeatures(IDataView data, string columnName, int width, long rows, string dataName, Action throwIfCancelled,
    VaeLikelihood likelihood = VaeLikelihood.Bernoulli) : ITrainingFeatures
{
    private const int PoolBatches = 64;

    public int Width { get; } = width;

    public long Rows { get; } = rows;

    public IEnumerable<FeatureBatch> ReadShuffled(int batchSize, int seed)
    {
        var random = new Random(seed);
        var poolRows = batchSize * PoolBatches;
        var pool = new float[poolRows * Width];

        // One batch array for the whole epoch (the loop copies each batch into a tensor before asking for the next):
        // a fresh 400 KB array per batch went to the large-object heap, which only a gen-2 GC gives back.
        var batchBuffer = new float[batchSize * Width];
        var filled = 0;
        foreach (var row in FeatureColumn.ReadRows(data, columnName, Width, dataName, throwIfCancelled, data.CanShuffle ? new Random(seed) : null, likelihood))
        {
            row.CopyTo(pool.AsSpan(filled * Width, Width));
            if (++filled == poolRows)
            {
                foreach (var batch in Drain(pool, filled, batchSize, random, batchBuffer))
                {
                    yield return batch;
                }

                filled = 0;
            }
        }

        foreach (var batch in Drain(pool, filled, batchSize, random, batchBuffer))
        {
            yield return batch;
        }
    }

    private IEnumerable<FeatureBatch> Drain(float[] pool, int filled, int batchSize, Random random, float[] buffer)
    {
        var order = Enumerable.Range(0, filled).ToArray();
        random.Shuffle(order);
        for (var start = 0; start < filled; start += batchSize)
        {
            var count = Math.Min(batchSize, filled - start);
            for (var i = 0; i < count; i++)
            {
                pool.AsSpan(order[start + i] * Width, Width).CopyTo(buffer.AsSpan(i * Width, Width));
            }

            yield return new FeatureBatch(buffer, count);
        }
    }
}
