using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Datasets;

/// <summary>
/// A read-only <see cref="IDataView"/> over an in-memory row-major float matrix (or a byte matrix of pixels, served
/// as byte / 255), with an optional UInt32 label per row. Columns: the label (when given), then the features as a
/// known-size vector. Rows are served in order straight from the array (no copy of the matrix, no per-row objects),
/// which is far faster than <c>LoadFromEnumerable</c>.
/// </summary>
internal sealed class FeatureMatrixDataView : IDataView
{
    private readonly float[]? _features;
    private readonly byte[]? _pixelBytes;
    private readonly uint[]? _labels;
    private readonly int _featureCount;
    private readonly int _rowCount;
    private readonly int _featuresColumnIndex;
    private readonly int _labelColumnIndex;

    /// <param name="features">Row-major matrix, <paramref name="featureCount"/> values per row; kept, not copied.</param>
    /// <param name="featureCount">Values per row: the size of the features vector.</param>
    /// <param name="labels">One label per row, or null for a view without label column; kept, not copied.</param>
    /// <param name="featuresColumnName">Name of the features column.</param>
    /// <param name="labelColumnName">Name of the label column (ignored without labels).</param>
    public FeatureMatrixDataView(
        float[] features,
        int featureCount,
        uint[]? labels,
        string featuresColumnName = Mnist.FeaturesColumnName,
        string labelColumnName = Mnist.LabelColumnName)
        : this(features, null, features?.Length ?? 0, featureCount, labels, featuresColumnName, labelColumnName)
    {
    }

    private FeatureMatrixDataView(float[]? features, byte[]? pixelBytes, int valueCount, int featureCount, uint[]? labels,
        string featuresColumnName, string labelColumnName)
    {
        if (features is null && pixelBytes is null)
        {
            throw new ArgumentNullException(nameof(features));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(featureCount);
        ArgumentException.ThrowIfNullOrEmpty(featuresColumnName);
        if (valueCount % featureCount != 0)
        {
            throw new ArgumentException(
                $"The feature matrix has {valueCount} values, not a multiple of {featureCount} values per row.", nameof(features));
        }

        _features = features;
        _pixelBytes = pixelBytes;
        _featureCount = featureCount;
        _rowCount = valueCount / featureCount;
        _labels = labels;

        var builder = new DataViewSchema.Builder();
        _labelColumnIndex = -1;
        if (labels is not null)
        {
            ArgumentException.ThrowIfNullOrEmpty(labelColumnName);
            if (labels.Length != _rowCount)
            {
                throw new ArgumentException(
                    $"There are {labels.Length} labels for {_rowCount} rows of features; expected one label per row.", nameof(labels));
            }

            if (labelColumnName == featuresColumnName)
            {
                throw new ArgumentException($"The label and features columns must have different names, both are '{labelColumnName}'.", nameof(labelColumnName));
            }

            _labelColumnIndex = 0;
            builder.AddColumn(labelColumnName, NumberDataViewType.UInt32);
        }

        _featuresColumnIndex = labels is null ? 0 : 1;
        builder.AddColumn(featuresColumnName, new VectorDataViewType(NumberDataViewType.Single, featureCount));
        Schema = builder.ToSchema();
    }

    /// <summary>A view over pixel bytes (0-255, row-major; kept, not copied), each served as byte / 255 in [0, 1].</summary>
    /// <param name="pixelBytes">Row-major bytes, <paramref name="featureCount"/> per row.</param>
    /// <param name="featureCount">Values per row: the size of the features vector.</param>
    /// <param name="labels">One label per row, or null for a view without label column; kept, not copied.</param>
    /// <param name="featuresColumnName">Name of the features column.</param>
    /// <param name="labelColumnName">Name of the label column (ignored without labels).</param>
    public static FeatureMatrixDataView FromPixelBytes(byte[] pixelBytes, int featureCount, uint[]? labels,
        string featuresColumnName = Mnist.FeaturesColumnName, string labelColumnName = Mnist.LabelColumnName)
    {
        ArgumentNullException.ThrowIfNull(pixelBytes);
        return new FeatureMatrixDataView(null, pixelBytes, pixelBytes.Length, featureCount, labels, featuresColumnName, labelColumnName);
    }

    /// <inheritdoc />
    public bool CanShuffle => false;

    /// <inheritdoc />
    public DataViewSchema Schema { get; }

    /// <inheritdoc />
    public long? GetRowCount() => _rowCount;

    /// <inheritdoc />
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        var active = new bool[Schema.Count];
        foreach (var column in columnsNeeded)
        {
            if (column.Index < 0 || column.Index >= Schema.Count || !Schema[column.Index].Type.Equals(column.Type))
            {
                throw new ArgumentException($"Column '{column.Name}' does not belong to this data view's schema.", nameof(columnsNeeded));
            }

            active[column.Index] = true;
        }

        return new Cursor(this, active);
    }

    /// <inheritdoc />
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly FeatureMatrixDataView _parent;
        private readonly bool[] _active;
        private long _position = -1;
        private bool _done;

        public Cursor(FeatureMatrixDataView parent, bool[] active)
        {
            _parent = parent;
            _active = active;
        }

        public override DataViewSchema Schema => _parent.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_done)
            {
                return false;
            }

            if (_position + 1 < _parent._rowCount)
            {
                _position++;
                return true;
            }

            // ML.NET convention: once exhausted, the position is -1 again.
            _done = true;
            _position = -1;
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId value) =>
            {
                EnsureOnRow();
                value = new DataViewRowId((ulong)_position, 0);
            };

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[CheckColumn(column)];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int index = CheckColumn(column);
            if (!_active[index])
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this cursor was created.");
            }

            Delegate getter;
            Type expected;
            if (index == _parent._featuresColumnIndex)
            {
                getter = (ValueGetter<VBuffer<float>>)GetFeatures;
                expected = typeof(VBuffer<float>);
            }
            else if (index == _parent._labelColumnIndex)
            {
                getter = (ValueGetter<uint>)GetLabel;
                expected = typeof(uint);
            }
            else
            {
                throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' does not belong to this cursor's schema.");
            }

            if (getter is not ValueGetter<TValue> typed)
            {
                throw new InvalidOperationException(
                    $"Column '{column.Name}' holds {expected.Name} values; a getter for {typeof(TValue).Name} was requested.");
            }

            return typed;
        }

        protected override void Dispose(bool disposing)
        {
            _done = true;
            _position = -1;
            base.Dispose(disposing);
        }

        private void GetFeatures(ref VBuffer<float> value)
        {
            EnsureOnRow();
            int size = _parent._featureCount;
            int start = checked((int)_position * size);
            var editor = VBufferEditor.Create(ref value, size);
            if (_parent._features is { } features)
            {
                features.AsSpan(start, size).CopyTo(editor.Values);
            }
            else
            {
                MnistImages.ScaleToUnitInterval(_parent._pixelBytes.AsSpan(start, size), editor.Values);
            }

            value = editor.Commit();
        }

        private void GetLabel(ref uint value)
        {
            EnsureOnRow();
            value = _parent._labels![_position];
        }

        private void EnsureOnRow()
        {
            if (_position < 0)
            {
                throw new InvalidOperationException("The cursor is not on a row: call MoveNext first, and read values only while it returns true.");
            }
        }

        private int CheckColumn(DataViewSchema.Column column)
        {
            if (column.Index < 0 || column.Index >= _active.Length || !Schema[column.Index].Type.Equals(column.Type))
            {
                throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' does not belong to this cursor's schema.");
            }

            return column.Index;
        }
    }
}
