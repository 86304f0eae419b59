using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Internals;

namespace Vae.ML.Anomaly;

/// <summary>
/// A trained VAE anomaly detector. As an <see cref="ITransformer"/> it adds two columns to data with the feature column,
/// like ML.NET's own anomaly detectors: <c>Score</c> (<see cref="float"/>, the VAE's per-row loss at z = μ; higher =
/// more anomalous) and <c>PredictedLabel</c> (<see cref="bool"/>, <c>Score &gt; <see cref="Threshold"/></c>; false
/// when the score is NaN). <c>mlContext.AnomalyDetection.Evaluate</c> reads them unchanged.
/// Dispose it to release the network's native memory.
/// </summary>
public sealed class VaeAnomalyTransformer : ITransformer, IDisposable
{
    /// <summary>Name of the Boolean output column, as ML.NET's anomaly detectors name it.</summary>
    public const string PredictedLabelColumnName = "PredictedLabel";

    private readonly IHostEnvironment _env;
    private readonly SharedNetwork _network;
    private int _disposed;

    internal VaeAnomalyTransformer(IHostEnvironment env, VaeTransformer vae, float threshold, double? contamination)
        : this(env, new SharedNetwork(vae), threshold, contamination)
    {
    }

    private VaeAnomalyTransformer(IHostEnvironment env, SharedNetwork network, float threshold, double? contamination)
    {
        if (!float.IsFinite(threshold))
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "The anomaly threshold must be a finite number.");
        }

        _env = env;
        _network = network;
        Threshold = threshold;
        Contamination = contamination;
    }

    /// <summary><c>PredictedLabel</c> is true where <c>Score</c> is above this value.</summary>
    public float Threshold { get; }

    /// <summary>
    /// The contamination the threshold was derived from (the training scores' (1 − contamination) quantile); null when
    /// the threshold was set with <see cref="VaeAnomalyCatalog.ChangeModelThreshold"/>.
    /// </summary>
    public double? Contamination { get; }

    /// <summary>
    /// The underlying VAE (latent means, reconstructions, sampling). It belongs to this detector: do not dispose it.
    /// </summary>
    public VaeTransformer Vae => _network.Vae;

    /// <summary>Name of the input column.</summary>
    public string FeatureColumnName => Vae.FeatureColumnName;

    /// <summary>Name of the <see cref="float"/> score column (<see cref="VaeOptions.ScoreColumnName"/>, default "Score").</summary>
    public string ScoreColumnName => Vae.ScoreColumnName;

    /// <summary>Always true: each row is scored on its own.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The input schema plus <c>Score</c> and <c>PredictedLabel</c>.</summary>
    /// <param name="inputSchema">Schema of the data to score; must hold the feature column with the training data's size.</param>
    /// <returns>The output schema.</returns>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new AnomalyColumns(this, inputSchema, Vae.GetOutputSchema(inputSchema)).OutputSchema;
    }

    /// <summary>A row mapper for single rows, as the prediction engine uses.</summary>
    /// <param name="inputSchema">Schema of the rows to map.</param>
    /// <returns>The mapper.</returns>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new AnomalyRowMapper(this, Vae.GetRowToRowMapper(inputSchema));
    }

    /// <summary>Adds <c>Score</c> and <c>PredictedLabel</c> to <paramref name="input"/>, lazily (nothing runs until a cursor reads them).</summary>
    /// <param name="input">Data with the feature column.</param>
    /// <returns>The scored view.</returns>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new AnomalyDataView(this, input.Schema, Vae.Transform(input));
    }

    /// <summary>Saves the detector into an ML.NET model (used by <c>mlContext.Model.Save</c>).</summary>
    /// <param name="ctx">ML.NET's save context.</param>
    void ICanSaveModel.Save(ModelSaveContext ctx) => MlNetInternals.SaveAnomalyDetector(ctx, Vae, Threshold, Contamination);

    /// <summary>Releases the network's native memory once every detector sharing it is disposed.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _network.Release();
        }
    }

    /// <summary>The same network with another threshold (see <see cref="VaeAnomalyCatalog.ChangeModelThreshold"/>).</summary>
    internal VaeAnomalyTransformer WithThreshold(float threshold)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var detector = new VaeAnomalyTransformer(_env, _network, threshold, contamination: null);
        _network.AddOwner();
        return detector;
    }

    /// <summary>A VAE shared by detectors that differ only in threshold; disposed with its last owner.</summary>
    private sealed class SharedNetwork(VaeTransformer vae)
    {
        private readonly object _lock = new();
        private int _owners = 1;

        public VaeTransformer Vae { get; } = vae;

        public void AddOwner()
        {
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_owners == 0, Vae);
                _owners++;
            }
        }

        public void Release()
        {
            lock (_lock)
            {
                if (--_owners == 0)
                {
                    Vae.Dispose();
                }
            }
        }
    }
}
