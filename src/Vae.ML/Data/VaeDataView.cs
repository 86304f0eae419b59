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
/// <see cref="BatchRows"/> rows ahead and the network runs once for all of them. Every row's id is compared with the id
/// the look-ahead cursor read for it, so a source whose two cursors do not give the same rows in the same order (a
/// database query without ORDER BY, a queue) falls back to one row per forward pass instead of giving another row's
/// outputs. Values never throw: odd rows are scored (NaN in, NaN out) and counted in one warning per cursor.
/// </summary>
internal sealed class VaeCursor : DataViewRowCursor
{
    /// <summary>Rows per forward pass.</summary>
    internal const int BatchRows = 1024;

    private const string DataName = "Input data";

    private readonly VaeRowMapping _mapping;
    private readonly DataViewRowCursor _input;
    private readonly bool[] _active;
    private readonly RowOutputs? _outputs;
    private readonly ScoringTally? _tally;
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
    private bool _batchReadAhead;
    private long _servedPosition = -1;
    private int _servedIndex;
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
        try
        {
            _inputId = _input.GetIdGetter();
            if (anyOutput)
            {
                _inputFeatures = _input.GetGetter<VBuffer<float>>(mapping.FeatureInput);
                _outputs = new RowOutputs(mapping.Transformer, BatchRows, _active);
                _tally = new ScoringTally(mapping.Transformer.Environment, "VAE scoring (cursor)");
            }
        }
        catch
        {
            // The caller never sees this cursor, so it cannot dispose the input cursor it holds.
            _input.Dispose();
            throw;
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

    public override bool MoveNext()
    {
        if (_input.MoveNext())
        {
            return true;
        }

        _tally?.Report();
        return false;
    }

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
            try
            {
                _ahead?.Dispose();
                _input.Dispose();
            }
            finally
            {
                _tally?.Report();
            }
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

        if (position != _servedPosition)
        {
            _servedIndex = FindOrCompute(position);
            _servedPosition = position;
            _tally!.Count(_outputs!.ValuesOf(_servedIndex));
        }

        return _servedIndex;
    }

    private int FindOrCompute(long position)
    {
        if (_batchStart >= 0 && position >= _batchStart && position < _batchStart + _batchCount)
        {
            var index = (int)(position - _batchStart);
            if (!_batchReadAhead || IsCurrentRow(_batchIds[index]))
            {
                return index;
            }

            // The look-ahead cursor read other rows than the input cursor gives: its outputs belong to other rows.
            StopBatching();
        }
        else if (_batching && TryLoadBatch(position))
        {
            return 0;
        }

        LoadSingleRow(position);
        return 0;
    }

    private bool IsCurrentRow(DataViewRowId id)
    {
        var currentId = default(DataViewRowId);
        _inputId(ref currentId);
        return id.Equals(currentId);
    }

    private bool TryLoadBatch(long position)
    {
        if (_ahead is null)
        {
            OpenAhead();
        }

        if (_aheadPosition >= position)
        {
            // Rows are only ever read forward; a second look at an earlier row means the orders diverged.
            return StopBatching();
        }

        while (_aheadPosition < position - 1)
        {
            if (!_ahead!.MoveNext())
            {
                return StopBatching();
            }

            _aheadPosition++;
        }

        var count = 0;
        while (count < BatchRows && _ahead!.MoveNext())
        {
            _aheadPosition++;
            _aheadFeatures!(ref _featureBuffer);
            FeatureColumn.CopyDense(_featureBuffer, _batchInputs.AsSpan(count * _width, _width), _mapping.FeatureInput.Name, _aheadPosition, DataName);
            _aheadId!(ref _batchIds[count]);
            count++;
        }

        if (count == 0 || !IsCurrentRow(_batchIds[0]))
        {
            return StopBatching();
        }

        _outputs!.Compute(_batchInputs, count);
        _batchStart = position;
        _batchCount = count;
        _batchReadAhead = true;
        return true;
    }

    private void OpenAhead()
    {
        var features = _mapping.FeatureInput;
        var ahead = _source.GetRowCursor([features], _seed is int s ? new Random(s) : null);
        try
        {
            _aheadId = ahead.GetIdGetter();
            _aheadFeatures = ahead.GetGetter<VBuffer<float>>(features);
        }
        catch
        {
            ahead.Dispose();
            throw;
        }

        _ahead = ahead;
    }

    private bool StopBatching()
    {
        _batching = false;
        _batchStart = -1;
        _batchCount = 0;
        _ahead?.Dispose();
        _ahead = null;
        return false;
    }

    private void LoadSingleRow(long position)
    {
        _inputFeatures!(ref _featureBuffer);
        FeatureColumn.CopyDense(_featureBuffer, _batchInputs.AsSpan(0, _width), _mapping.FeatureInput.Name, position, DataName);
        _outputs!.Compute(_batchInputs, 1);
        _batchStart = position;
        _batchCount = 1;
        _batchReadAhead = false;
    }
}
