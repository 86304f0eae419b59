using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Internals;

namespace Vae.ML.Anomaly;

/// <summary>
/// Estimator that trains a variational autoencoder on (mostly) normal rows and returns a
/// <see cref="VaeAnomalyTransformer"/>, whose <c>Score</c> is the VAE's per-row loss (higher = more anomalous) and whose
/// <c>PredictedLabel</c> is <c>Score &gt; Threshold</c>. The threshold is the training scores' (1 − contamination)
/// quantile. Create it with <c>mlContext.AnomalyDetection.Trainers.Vae(...)</c>
/// (<see cref="VaeAnomalyCatalog"/>); <c>mlContext.AnomalyDetection.Evaluate</c> works on its output unchanged.
/// </summary>
public sealed class VaeAnomalyTrainer : IEstimator<VaeAnomalyTransformer>
{
    /// <summary>
    /// Default expected fraction of anomalies in the training data: 0.1, as PyOD's detectors. With data known to be
    /// clean it is the false-positive rate the threshold accepts on data like the training rows.
    /// </summary>
    public const double DefaultContamination = 0.1;

    private readonly IHostEnvironment _env;
    private readonly VaeTrainer _vae;
    private readonly VaeOptions _options;

    internal VaeAnomalyTrainer(IHostEnvironment env, VaeOptions options, double contamination)
    {
        _env = env ?? throw new ArgumentNullException(nameof(env));
        _options = options.Clone();
        _vae = new VaeTrainer(env, _options);
        if (!(contamination >= 0 && contamination < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(contamination), contamination,
                "contamination (the expected fraction of anomalies among the training rows) must be in [0, 1).");
        }

        foreach (var (option, name) in new[] { (nameof(VaeOptions.ScoreColumnName), _options.ScoreColumnName), (nameof(VaeOptions.FeatureColumnName), _options.FeatureColumnName) })
        {
            if (name == VaeAnomalyTransformer.PredictedLabelColumnName)
            {
                throw new ArgumentException(
                    $"{option} '{name}' collides with the anomaly detector's output column '{VaeAnomalyTransformer.PredictedLabelColumnName}'.", option);
            }
        }

        Contamination = contamination;
    }

    /// <summary>Expected fraction of anomalies among the training rows; the threshold is the training scores' (1 − this) quantile.</summary>
    public double Contamination { get; }

    /// <summary>Trains the VAE on <paramref name="input"/> and sets the threshold from its training scores.</summary>
    /// <param name="input">Data with the feature column (a known-size vector of Single, values in [0, 1]).</param>
    /// <returns>The detector; dispose it to free the network's native memory.</returns>
    public VaeAnomalyTransformer Fit(IDataView input) => Fit(input, _options.CancellationToken);

    /// <summary>Trains the VAE on <paramref name="input"/>, stopping at a batch boundary when cancelled.</summary>
    /// <param name="input">Data with the feature column (a known-size vector of Single, values in [0, 1]).</param>
    /// <param name="cancellationToken">Cancels training with an <see cref="OperationCanceledException"/>.</param>
    /// <returns>The detector; dispose it to free the network's native memory.</returns>
    public VaeAnomalyTransformer Fit(IDataView input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var vae = _vae.Fit(input, cancellationToken);
        try
        {
            // Scored at z = μ, the same deterministic score the transformer outputs, so that the rule holds on the
            // training rows exactly: ⌈(n − 1)·Contamination⌉ of them have Score > Threshold when no scores tie.
            var trainingScores = vae.Transform(input).GetColumn<float>(vae.ScoreColumnName).ToArray();
            var threshold = ScoreQuantile.Of(trainingScores, 1 - Contamination);
            return new VaeAnomalyTransformer(_env, vae, threshold, Contamination);
        }
        catch
        {
            vae.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks that the input has the feature column (a known-size vector of Single) and returns the input schema plus
    /// <c>Score</c> (Single) and <c>PredictedLabel</c> (Boolean).
    /// </summary>
    /// <param name="inputSchema">The schema of the data the detector would be trained on.</param>
    /// <returns>The schema after the detector's transform.</returns>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        // The VAE's own check of the feature column, with its messages; its extra columns are not part of this output.
        _vae.GetOutputSchema(inputSchema);
        return MlNetInternals.WithColumns(inputSchema,
        [
            MlNetInternals.ScalarColumn(_options.ScoreColumnName, NumberDataViewType.Single),
            MlNetInternals.ScalarColumn(VaeAnomalyTransformer.PredictedLabelColumnName, BooleanDataViewType.Instance),
        ]);
    }
}
