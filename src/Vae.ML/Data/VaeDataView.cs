using System.Runtime.CompilerServices;
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
/// Cursor over the VAE's output. Without an active output column it is the input cursor. With one, it reads its ONE
/// input cursor up to <see cref="BatchRows"/> rows ahead of the consumer into a bounded buffer (the feature vectors
/// plus a copy of every requested input column), and the network runs once for the buffered rows when an output is
/// first read. The source is therefore read once, in one order: sources whose cursors do not agree (a database query
/// without ORDER BY, a queue) are scored correctly, and an expensive source (text parsing, a database) is not parsed
/// twice. Values never throw: odd rows are scored (NaN in, NaN out) and counted in one warning per cursor.
/// </summary>
/// <remarks>
/// The methods that run once per row (here, in <see cref="RowOutputs"/>, <see cref="FeatureColumn"/>,
/// <see cref="Torch.InputBatch"/> and <see cref="ScoringTally"/>) are compiled optimized at their first call
/// (<see cref="MethodImplOptions.AggressiveOptimization"/>). With tiered compilation they would run unoptimized code
/// until the runtime promotes them, 30 calls and a 100 ms quiet spell later, which a process that keeps compiling new
/// methods postpones: the first 10,000-row passes of a process read their rows ≈ 4× slower (≈ 25 ms per pass, the
/// "fixed cost" of short extraction passes; docs/performance.md).
/// </remarks>
internal sealed class VaeCursor : DataViewRowCursor
{
    /// <summary>Rows per forward pass, and the most rows the cursor holds ahead of its consumer.</summary>
    internal const int BatchRows = 1024;

    private const string DataName = "Input data";

    private readonly VaeRowMapping _mapping;
    private readonly DataViewRowCursor _input;
    private readonly bool[] _active;
    private readonly bool _batching;
    private readonly RowOutputs? _outputs;
    private readonly ScoringTally? _tally;
    private readonly Dictionary<int, ColumnBuffer> _buffers = [];
    private readonly ValueGetter<DataViewRowId> _inputId;
    private readonly ValueGetter<VBuffer<float>>? _inputFeatures;

    private readonly DataViewRowId[] _batchIds;
    private VBuffer<float> _featureBuffer;
    private int _batchCount;
    private int _index = -1;
    private bool _inputDone;
    private long _position = -1;
    private long _countedPosition = -1;

    public VaeCursor(IDataView input, VaeRowMapping mapping, DataViewSchema.Column[] columnsNeeded, int? seed)
    {
        _mapping = mapping;
        _active = mapping.ActiveOutputs(columnsNeeded);
        _batching = _active.Any(a => a);
        var inputColumns = mapping.GetDependencies(columnsNeeded).ToList();
        _input = input.GetRowCursor(inputColumns, seed is int s ? new Random(s) : null);
        try
        {
            _inputId = _input.GetIdGetter();
            if (_batching)
            {
                _inputFeatures = _input.GetGetter<VBuffer<float>>(mapping.FeatureInput);
                foreach (var column in columnsNeeded.Where(c => c.Index < mapping.FirstOutputIndex))
                {
                    var inputColumn = mapping.InputSchema[column.Index];
                    _buffers[column.Index] = ColumnBuffer.Create(_input, inputColumn, BatchRows);
                }

                _outputs = new RowOutputs(mapping.Transformer, BatchRows);
                _tally = new ScoringTally(mapping.Transformer.Environment, "VAE scoring (cursor)");
            }
        }
        catch
        {
            // The caller never sees this cursor, so it cannot dispose the input cursor it holds.
            _input.Dispose();
            throw;
        }

        _batchIds = _batching ? new DataViewRowId[BatchRows] : [];
    }

    public override DataViewSchema Schema => _mapping.OutputSchema;

    public override long Position => _batching ? _position : _input.Position;

    public override long Batch => _batching ? 0 : _input.Batch;

    public override ValueGetter<DataViewRowId> GetIdGetter()
        => _batching ? (ref DataViewRowId id) => id = _batchIds[CurrentIndex()] : _inputId;

    public override bool IsColumnActive(DataViewSchema.Column column)
    {
        if (column.Index >= _mapping.FirstOutputIndex)
        {
            return _active[column.Index - _mapping.FirstOutputIndex];
        }

        return _batching ? _buffers.ContainsKey(column.Index) : _input.IsColumnActive(_mapping.InputSchema[column.Index]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override bool MoveNext()
    {
        if (!_batching)
        {
            return _input.MoveNext();
        }

        if (_index >= 0 && _index + 1 < _batchCount)
        {
            _index++;
            _position++;
            return true;
        }

        if (!FillBatch())
        {
            _index = -1;
            _tally!.Report();
            return false;
        }

        _index = 0;
        _position++;
        return true;
    }

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (column.Index < _mapping.FirstOutputIndex)
        {
            if (!_batching)
            {
                return _input.GetGetter<TValue>(_mapping.InputSchema[column.Index]);
            }

            return _buffers.TryGetValue(column.Index, out var buffer)
                ? buffer.GetGetter<TValue>(CurrentIndex)
                : throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
        }

        var slot = column.Index - _mapping.FirstOutputIndex;
        if (!_active[slot] || _outputs is null)
        {
            throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
        }

        return _outputs.GetGetter<TValue>(slot, column, CurrentRowComputed);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                _input.Dispose();
                _outputs?.Dispose();
            }
            finally
            {
                _tally?.Report();
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>Reads up to <see cref="BatchRows"/> rows of the input into the buffers; false when it has none left.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool FillBatch()
    {
        _batchCount = 0;
        _outputs!.Invalidate();
        while (_batchCount < BatchRows && !_inputDone)
        {
            if (!_input.MoveNext())
            {
                _inputDone = true;
                break;
            }

            foreach (var buffer in _buffers.Values)
            {
                buffer.Capture(_batchCount);
            }

            _inputId(ref _batchIds[_batchCount]);
            _inputFeatures!(ref _featureBuffer);
            _outputs!.CaptureInput(_batchCount, _featureBuffer, _mapping.FeatureInput.Name, _input.Position, DataName);
            _batchCount++;
        }

        return _batchCount > 0;
    }

    /// <summary>The current row's index in the batch buffers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int CurrentIndex()
    {
        if (_index < 0)
        {
            throw new InvalidOperationException("The cursor is not on a row: call MoveNext first (and only while it returns true).");
        }

        return _index;
    }

    /// <summary>Makes sure the current batch's outputs are computed; returns the current row's index in them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int CurrentRowComputed()
    {
        var index = CurrentIndex();
        if (!_outputs!.Computed)
        {
            _outputs.ComputeBatch(_batchCount);
        }

        if (_countedPosition != _position)
        {
            _countedPosition = _position;
            _tally!.Count(_outputs!.ValuesOf(index));
        }

        return index;
    }
}
