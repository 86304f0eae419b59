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
