using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Data;

/// <summary>
/// The VAE's columns over one input schema: checks the feature column, builds the output schema (input columns first,
/// then Latent, LatentLogVariance, Reconstruction, Score) and maps single rows for the prediction engine.
/// </summary>
internal sealed class VaeRowMapping : IRowToRowMapper
{
    public const int LatentSlot = 0;
    public const int LogVarianceSlot = 1;
    public const int ReconstructionSlot = 2;
    public const int ScoreSlot = 3;

    public VaeRowMapping(VaeTransformer transformer, DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        Transformer = transformer;
        InputSchema = inputSchema;
        var columns = transformer.Columns;
        var size = FeatureColumn.GetVectorSize(inputSchema, columns.Feature, nameof(VaeOptions.FeatureColumnName));
        if (size != transformer.InputSize)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.FeatureColumnName), columns.Feature,
                $"Input column '{columns.Feature}' has {size} values per row; this VAE was trained on {transformer.InputSize}.");
        }

        FeatureInput = inputSchema[columns.Feature];
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        var latent = new VectorDataViewType(NumberDataViewType.Single, transformer.LatentDimension);
        builder.AddColumn(columns.Latent, latent);
        builder.AddColumn(columns.LatentLogVariance, latent);
        builder.AddColumn(columns.Reconstruction, new VectorDataViewType(NumberDataViewType.Single, transformer.InputSize));
        builder.AddColumn(columns.Score, NumberDataViewType.Single);
        OutputSchema = builder.ToSchema();
    }

    public VaeTransformer Transformer { get; }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public DataViewSchema.Column FeatureInput { get; }

    /// <summary>Index of the first output column; columns before it pass the input through.</summary>
    public int FirstOutputIndex => InputSchema.Count;

    /// <summary>Which of the four outputs (by slot) the given output columns ask for.</summary>
    public bool[] ActiveOutputs(IEnumerable<DataViewSchema.Column> columns)
    {
        var active = new bool[4];
        foreach (var column in columns)
        {
            if (column.Index >= FirstOutputIndex)
            {
                active[column.Index - FirstOutputIndex] = true;
            }
        }

        return active;
    }

    /// <summary>The input columns needed to produce <paramref name="dependingColumns"/> of the output.</summary>
    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = new HashSet<int>();
        foreach (var column in dependingColumns)
        {
            needed.Add(column.Index >= FirstOutputIndex ? FeatureInput.Index : column.Index);
        }

        return needed.Order().Select(i => InputSchema[i]).ToArray();
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new VaeRow(this, input, ActiveOutputs(activeColumns));
    }

    /// <summary>
    /// One mapped row: computes the outputs of the input's current row on demand, once per position. A prediction
    /// engine keeps one for its lifetime and never disposes it, so the warning about odd rows is logged once, at the
    /// first odd row.
    /// </summary>
    private sealed class VaeRow : DataViewRow
    {
        private readonly VaeRowMapping _mapping;
        private readonly DataViewRow _input;
        private readonly bool[] _active;
        private readonly RowOutputs _outputs;
        private readonly ScoringTally _tally;
        private readonly ValueGetter<VBuffer<float>> _features;
        private readonly float[] _dense;
        private VBuffer<float> _featureBuffer;
        private long _computedPosition = -1;

        public VaeRow(VaeRowMapping mapping, DataViewRow input, bool[] active)
        {
            _mapping = mapping;
            _input = input;
            _active = active;
            _outputs = new RowOutputs(mapping.Transformer, 1);
            _tally = new ScoringTally(mapping.Transformer.Environment, "VAE scoring (prediction engine or row mapper; reported once, at its first odd row)");
            _dense = new float[mapping.Transformer.InputSize];
            _features = active.Any(a => a) ? input.GetGetter<VBuffer<float>>(mapping.FeatureInput) : (ref VBuffer<float> _) => { };
        }

        public override DataViewSchema Schema => _mapping.OutputSchema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index < _mapping.FirstOutputIndex ? _input.IsColumnActive(_mapping.InputSchema[column.Index]) : _active[column.Index - _mapping.FirstOutputIndex];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _mapping.FirstOutputIndex)
            {
                return _input.GetGetter<TValue>(_mapping.InputSchema[column.Index]);
            }

            var slot = column.Index - _mapping.FirstOutputIndex;
            if (!_active[slot])
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested as active.");
            }

            return _outputs.GetGetter<TValue>(slot, column, () =>
            {
                if (_computedPosition != _input.Position || !_outputs.Computed)
                {
                    _features(ref _featureBuffer);
                    FeatureColumn.CopyDense(_featureBuffer, _dense, _mapping.FeatureInput.Name, _input.Position, "Input data");
                    _outputs.Compute(_dense, 1);
                    _computedPosition = _input.Position;
                    var values = _outputs.ValuesOf(0);
                    _tally.Count(values);
                    if (values != RowValues.InRange)
                    {
                        _tally.Report();
                    }
                }

                return 0;
            });
        }
    }
}
