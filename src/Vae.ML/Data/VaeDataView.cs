using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Data;

/// <summary>The lazy result of <see cref="VaeTransformer.Transform"/>: input columns plus the VAE's outputs.</summary>
internal sealed class VaeDataView(IDataView input, VaeRowMapping mapping) : IDataView
{
    public bool CanShuffle => input.CanShuffle;

    public DataViewSchema Schema => mapping.OutputSchema;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var columns = columnsNeeded.ToArray();
        return new VaeCursor(input, mapping, columns, rand?.Next());
    }

    // One cursor: each already runs the network on batches, and the network is shared.
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];
}

/// <summary>
/// Cursor over the VAE's output. Input columns pass through from the main input cursor. When an output column is
/// first read at a row, a second input cursor (over the feature column only, same order) reads up to
/// <see cref="BatchRows"/> rows ahead and the network runs once for all of them. Row ids from both cursors are compared,
/// so a source whose order is not repeatable falls back to one row per forward pass instead of giving wrong rows.
/// </summary>
internal sealed class VaeCursor : DataViewRowCursor
{
    /// <summary>Rows per forward pass.</summary>
    internal const int BatchRows = 1024;

    private readonly VaeRowMapping _mapping;
    private readonly DataViewRowCursor _input;
    private readonly bool[] _active;
    private readonly RowOutputs? _outputs;
    private readonly ValueGetter<DataViewRowId> _inputId;
    private readonly ValueGetter<VBuffer<float>>? _inputFeatures;
    private readonly IDataView _source;
    private readonly int? _seed;
    private readonly int _width;

    private DataViewRowCursor? _ahead;
    private ValueGetter<DataViewRowId>? _aheadId;
    private ValueGetter<VBuffer<float>>? _aheadFeatures;
    private long _aheadPosition = -1;
    private bool _batching = true;

    private readonly float[] _batchInputs;
    private readonly DataViewRowId[] _batchIds;
    private long _batchStart = -1;
    private int _batchCount;
    private VBuffer<float> _featureBuffer;

    public VaeCursor(IDataView input, VaeRowMapping mapping, DataViewSchema.Column[] columnsNeeded, int? seed)
    {
        _mapping = mapping;
        _source = input;
        _seed = seed;
        _width = mapping.Transformer.InputSize;
        _active = mapping.ActiveOutputs(columnsNeeded);
        var anyOutput = _active.Any(a => a);
        var inputColumns = mapping.GetDependencies(columnsNeeded).ToList();
        _input = input.GetRowCursor(inputColumns, seed is int s ? new Random(s) : null);
        _inputId = _input.GetIdGetter();
        if (anyOutput)
        {
            _outputs = new RowOutputs(mapping.Transformer, BatchRows, _active);
            _inputFeatures = _input.GetGetter<VBuffer<float>>(mapping.FeatureInput);
        }

        _batchInputs = anyOutput ? new float[BatchRows * _width] : [];
        _batchIds = anyOutput ? new DataViewRowId[BatchRows] : [];
    }

    public override DataViewSchema Schema => _mapping.OutputSchema;

    public override long Position => _input.Position;

    public override long Batch => _input.Batch;

    public override ValueGetter<DataViewRowId> GetIdGetter() => _inputId;

    public override bool IsColumnActive(DataViewSchema.Column column)
        => column.Index < _mapping.FirstOutputIndex ? _input.IsColumnActive(_mapping.InputSchema[column.Index]) : _active[column.Index - _mapping.FirstOutputIndex];

    public override bool MoveNext() => _input.MoveNext();

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (column.Index < _mapping.FirstOutputIndex)
        {
            return _input.GetGetter<TValue>(_mapping.InputSchema[column.Index]);
        }

        var slot = column.Index - _mapping.FirstOutputIndex;
        if (!_active[slot] || _outputs is null)
        {
            throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
        }

        return _outputs.GetGetter<TValue>(slot, column, CurrentRowInBatch);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _ahead?.Dispose();
            _input.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Makes sure the current row's outputs are computed; returns the row's index in the batch buffers.</summary>
    private int CurrentRowInBatch()
    {
        var position = _input.Position;
        if (position < 0)
        {
            throw new InvalidOperationException("The cursor is not on a row: call MoveNext first.");
        }

        if (_batchStart >= 0 && position >= _batchStart && position < _batchStart + _batchCount)
        {
            return (int)(position - _batchStart);
        }

        if (_batching && TryLoadBatch(position))
        {
            return 0;
        }

        LoadSingleRow(position);
        return 0;
    }

    private bool TryLoadBatch(long position)
    {
        if (_ahead is null)
        {
            var features = _mapping.FeatureInput;
            _ahead = _source.GetRowCursor([features], _seed is int s ? new Random(s) : null);
            _aheadId = _ahead.GetIdGetter();
            _aheadFeatures = _ahead.GetGetter<VBuffer<float>>(features);
        }

        if (_aheadPosition >= position)
        {
            // Rows are only ever read forward; a second look at an earlier row means the orders diverged.
            return StopBatching();
        }

        while (_aheadPosition < position - 1)
        {
            if (!_ahead.MoveNext())
            {
                return StopBatching();
            }

            _aheadPosition++;
        }

        var count = 0;
        while (count < BatchRows && _ahead.MoveNext())
        {
            _aheadPosition++;
            _aheadFeatures!(ref _featureBuffer);
            FeatureColumn.CopyValidated(_featureBuffer, _batchInputs.AsSpan(count * _width, _width), _mapping.FeatureInput.Name, _aheadPosition, "Input data");
            _aheadId!(ref _batchIds[count]);
            count++;
        }

        var currentId = default(DataViewRowId);
        _inputId(ref currentId);
        if (count == 0 || !_batchIds[0].Equals(currentId))
        {
            return StopBatching();
        }

        _outputs!.Compute(_batchInputs, count);
        _batchStart = position;
        _batchCount = count;
        return true;
    }

    private bool StopBatching()
    {
        _batching = false;
        _ahead?.Dispose();
        _ahead = null;
        return false;
    }

    private void LoadSingleRow(long position)
    {
        _inputFeatures!(ref _featureBuffer);
        FeatureColumn.CopyValidated(_featureBuffer, _batchInputs.AsSpan(0, _width), _mapping.FeatureInput.Name, position, "Input data");
        _outputs!.Compute(_batchInputs, 1);
        _batchStart = position;
        _batchCount = 1;
    }
}
