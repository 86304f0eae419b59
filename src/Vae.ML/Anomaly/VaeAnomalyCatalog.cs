using Microsoft.ML;
using Vae.ML.Anomaly;
using Vae.ML.Internals;

namespace Vae.ML;

/// <summary>
/// Extension methods that add the variational autoencoder to <see cref="AnomalyDetectionCatalog"/>
/// (<c>mlContext.AnomalyDetection</c>), next to ML.NET's own <c>RandomizedPca</c>.
/// </summary>
public static class VaeAnomalyCatalog
{
    /// <summary>
    /// Creates a <see cref="VaeAnomalyTrainer"/>: a VAE learns what normal rows of <paramref name="featureColumnName"/>
    /// look like; its transformer outputs <c>Score</c> (the VAE's per-row loss, higher = more anomalous) and
    /// <c>PredictedLabel</c> (<c>Score</c> above a threshold taken from the training scores).
    /// </summary>
    /// <param name="catalog">The anomaly detection trainers (<c>mlContext.AnomalyDetection.Trainers</c>).</param>
    /// <param name="featureColumnName">Known-size vector of <see cref="float"/> in [0, 1]. Default "Features".</param>
    /// <param name="latentDimension">Size of the latent space. Default 2.</param>
    /// <param name="epochs">Passes over the training data. Default 20.</param>
    /// <param name="batchSize">Rows per optimisation step. Default 128.</param>
    /// <param name="learningRate">Adam's learning rate. Default 1e-3.</param>
    /// <param name="contamination">
    /// Expected fraction of anomalies among the training rows, in [0, 1): the threshold is the training scores'
    /// (1 − contamination) quantile. Default <see cref="VaeAnomalyTrainer.DefaultContamination"/> (0.1).
    /// </param>
    /// <param name="seed">Seed of initialisation, shuffling and sampling; null derives it from the <see cref="MLContext"/>.</param>
    /// <returns>The estimator; call <see cref="VaeAnomalyTrainer.Fit(IDataView)"/> to train.</returns>
    public static VaeAnomalyTrainer Vae(
        this AnomalyDetectionCatalog.AnomalyDetectionTrainers catalog,
        string featureColumnName = "Features",
        int latentDimension = 2,
        int epochs = 20,
        int batchSize = 128,
        double learningRate = 1e-3,
        double contamination = VaeAnomalyTrainer.DefaultContamination,
        int? seed = null)
        => catalog.Vae(
            new VaeOptions
            {
                FeatureColumnName = featureColumnName,
                LatentDimension = latentDimension,
                Epochs = epochs,
                BatchSize = batchSize,
                LearningRate = learningRate,
                Seed = seed,
            },
            contamination);

    /// <summary>
    /// Creates a <see cref="VaeAnomalyTrainer"/> with every VAE option spelled out. <c>Score</c> is named by
    /// <see cref="VaeOptions.ScoreColumnName"/>; the VAE's other output columns are not part of the anomaly output.
    /// </summary>
    /// <param name="catalog">The anomaly detection trainers (<c>mlContext.AnomalyDetection.Trainers</c>).</param>
    /// <param name="options">The VAE's options; copied, so later changes to it do not affect the trainer.</param>
    /// <param name="contamination">
    /// Expected fraction of anomalies among the training rows, in [0, 1): the threshold is the training scores'
    /// (1 − contamination) quantile. Default <see cref="VaeAnomalyTrainer.DefaultContamination"/> (0.1).
    /// </param>
    /// <returns>The estimator; call <see cref="VaeAnomalyTrainer.Fit(IDataView)"/> to train.</returns>
    public static VaeAnomalyTrainer Vae(
        this AnomalyDetectionCatalog.AnomalyDetectionTrainers catalog,
        VaeOptions options,
        double contamination = VaeAnomalyTrainer.DefaultContamination)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new VaeAnomalyTrainer(MlNetInternals.GetEnvironment(catalog), options, contamination);
    }

    /// <summary>
    /// A copy of <paramref name="model"/> whose <c>PredictedLabel</c> is <c>Score &gt; threshold</c> (the network is
    /// shared, not copied). The counterpart of ML.NET's <c>ChangeModelThreshold</c> for PCA models, called the same way.
    /// </summary>
    /// <param name="catalog">The anomaly detection catalog (<c>mlContext.AnomalyDetection</c>).</param>
    /// <param name="model">A fitted VAE anomaly detector; it stays usable with its own threshold.</param>
    /// <param name="threshold">The new threshold on <c>Score</c>; any finite number.</param>
    /// <returns>The detector with the new threshold; dispose it as well as <paramref name="model"/>.</returns>
    public static VaeAnomalyTransformer ChangeModelThreshold(this AnomalyDetectionCatalog catalog, VaeAnomalyTransformer model, float threshold)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        return model.WithThreshold(threshold);
    }
}
