using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Anomaly;

/// <summary>
/// The detector's columns over the VAE's output: input columns pass through, then <c>Score</c> (the VAE's score) and
/// <c>PredictedLabel</c> (Score &gt; threshold). The VAE's latent, log-variance and reconstruction columns stay hidden.
/// </summary>
internal sealed class AnomalyColumns
{
    private readonly DataViewSchema _vaeSchema;
    private readonly DataViewSchema.Column _vaeScore;
    private readonly float _threshold;

    /// <param name="detector">The detector.</param>
    /// <param name="inputSchema">Schema of the data being scored.</param>
    /// <param name="vaeSchema">The VAE's output schema over <paramref name="inputSchema"/> (input columns first, same order).</param>
    public AnomalyColumns(VaeAnomalyTransformer detector, DataViewSchema inputSchema, DataViewSchema vaeSchema)
    {
        _vaeSchema = vaeSchema;
        _threshold = detector.Threshold;
        for (var i = 0; i < inputSchema.Count; i++)
        {
            if (vaeSchema[i].Name != inputSchema[i].Name || !vaeSchema[i].Type.Equals(inputSchema[i].Type))
            {
                throw new InvalidOperationException($"The VAE's output schema does not start with the input columns (column {i}, '{inputSchema[i].Name}').");
            }
        }

        _vaeScore = vaeSchema[detector.ScoreColumnName];
        FirstOutputIndex = inputSchema.Count;
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(detector.ScoreColumnName, NumberDataViewType.Single);
        builder.AddColumn(VaeAnomalyTransformer.PredictedLabelColumnName, BooleanDataViewType.Instance);
        OutputSchema = builder.ToSchema();
    }

    public DataViewSchema OutputSchema { get; }

    /// <summary>Index of <c>Score</c>; <c>PredictedLabel</c> follows it, input columns precede it.</summary>
    public int FirstOutputIndex { get; }

    /// <summary>The VAE output columns that produce <paramref name="columns"/> of this output.</summary>
    public IEnumerable<DataViewSchema.Column> ToVaeColumns(IEnumerable<DataViewSchema.Column> columns)
        => columns.Select(c => c.Index < FirstOutputIndex ? _vaeSchema[c.Index] : _vaeScore).Distinct().ToArray();

    /// <summary>Whether <paramref name="column"/> is active, given which VAE columns are.</summary>
    public bool IsActive(DataViewSchema.Column column, Func<DataViewSchema.Column, bool> vaeIsActive)
        => vaeIsActive(column.Index < FirstOutputIndex ? _vaeSchema[column.Index] : _vaeScore);

    /// <summary>The getter of <paramref name="column"/> of this output, reading from a row of the VAE's output.</summary>
    public ValueGetter<TValue> GetGetter<TValue>(DataViewRow vaeRow, DataViewSchema.Column column)
    {
        if (column.Index < FirstOutputIndex)
        {
            return vaeRow.GetGetter<TValue>(_vaeSchema[column.Index]);
        }

        if (column.Index == FirstOutputIndex)
        {
            return vaeRow.GetGetter<TValue>(_vaeScore);
        }

        if (typeof(TValue) != typeof(bool))
        {
            throw new InvalidOperationException($"Column '{column.Name}' is Boolean; it cannot be read as {typeof(TValue)}.");
        }

        var score = vaeRow.GetGetter<float>(_vaeScore);
        var threshold = _threshold;
        ValueGetter<bool> predicted = (ref bool value) =>
        {
            var s = 0f;
            score(ref s);
            value = s > threshold;
        };
        return (ValueGetter<TValue>)(Delegate)predicted;
    }
}

/// <summary>The lazy result of <see cref="VaeAnomalyTransformer.Transform"/>.</summary>
internal sealed class AnomalyDataView(VaeAnomalyTransformer detector, DataViewSchema inputSchema, IDataView vaeOutput) : IDataView
{
    private readonly AnomalyColumns _columns = new(detector, inputSchema, vaeOutput.Schema);

    public bool CanShuffle => vaeOutput.CanShuffle;

    public DataViewSchema Schema => _columns.OutputSchema;

    public long? GetRowCount() => vaeOutput.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new AnomalyCursor(_columns, vaeOutput.GetRowCursor(_columns.ToVaeColumns(columnsNeeded), rand));

    // One cursor, as the VAE's view: it batches rows through one shared network.
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    private sealed class AnomalyCursor(AnomalyColumns columns, DataViewRowCursor vae) : DataViewRowCursor
    {
        public override DataViewSchema Schema => columns.OutputSchema;

        public override long Position => vae.Position;

        public override long Batch => vae.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => vae.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => columns.IsActive(column, vae.IsColumnActive);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => columns.GetGetter<TValue>(vae, column);

        public override bool MoveNext() => vae.MoveNext();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                vae.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>Single-row mapping for the prediction engine, on top of the VAE's row mapper.</summary>
internal sealed class AnomalyRowMapper : IRowToRowMapper
{
    private readonly IRowToRowMapper _vae;
    private readonly AnomalyColumns _columns;

    public AnomalyRowMapper(VaeAnomalyTransformer detector, IRowToRowMapper vae)
    {
        _vae = vae;
        _columns = new AnomalyColumns(detector, vae.InputSchema, vae.OutputSchema);
    }

    public DataViewSchema InputSchema => _vae.InputSchema;

    public DataViewSchema OutputSchema => _columns.OutputSchema;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        => _vae.GetDependencies(_columns.ToVaeColumns(dependingColumns));

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        => new AnomalyRow(_columns, _vae.GetRow(input, _columns.ToVaeColumns(activeColumns)));

    private sealed class AnomalyRow(AnomalyColumns columns, DataViewRow vae) : DataViewRow
    {
        public override DataViewSchema Schema => columns.OutputSchema;

        public override long Position => vae.Position;

        public override long Batch => vae.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => vae.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => columns.IsActive(column, vae.IsColumnActive);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => columns.GetGetter<TValue>(vae, column);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                vae.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
