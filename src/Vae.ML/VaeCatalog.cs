using Microsoft.ML;

namespace Vae.ML;

/// <summary>Extension methods that add the variational autoencoder to <see cref="TransformsCatalog"/>.</summary>
public static class VaeCatalog
{
    /// <summary>
    /// Creates a <see cref="VaeTrainer"/> that learns a variational autoencoder of <paramref name="inputColumnName"/> and
    /// adds its latent mean (<paramref name="outputColumnName"/>), log-variance, reconstruction and per-row loss columns.
    /// </summary>
    /// <param name="catalog">The transform catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="outputColumnName">Name of the latent-mean column. Default "Latent".</param>
    /// <param name="inputColumnName">Known-size vector of <see cref="float"/> in [0, 1]. Default "Features".</param>
    /// <param name="latentDimension">Size of the latent space. Default 2.</param>
    /// <param name="epochs">Passes over the training data. Default 20.</param>
    /// <param name="batchSize">Rows per optimisation step. Default 128.</param>
    /// <param name="learningRate">Adam's learning rate. Default 1e-3.</param>
    /// <param name="seed">Seed of initialisation, shuffling and sampling; null derives it from the <see cref="MLContext"/>.</param>
    /// <returns>The estimator; call <see cref="VaeTrainer.Fit(IDataView)"/> to train.</returns>
    public static VaeTrainer Vae(
        this TransformsCatalog catalog,
        string outputColumnName = "Latent",
        string inputColumnName = "Features",
        int latentDimension = 2,
        int epochs = 20,
        int batchSize = 128,
        double learningRate = 1e-3,
        int? seed = null)
        => catalog.Vae(new VaeOptions
        {
            LatentColumnName = outputColumnName,
            FeatureColumnName = inputColumnName,
            LatentDimension = latentDimension,
            Epochs = epochs,
            BatchSize = batchSize,
            LearningRate = learningRate,
            Seed = seed,
        });

    /// <summary>Creates a <see cref="VaeTrainer"/> with every option spelled out.</summary>
    /// <param name="catalog">The transform catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="options">The options; copied, so later changes to it do not affect the trainer.</param>
    /// <returns>The estimator; call <see cref="VaeTrainer.Fit(IDataView)"/> to train.</returns>
    public static VaeTrainer Vae(this TransformsCatalog catalog, VaeOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        return new VaeTrainer(Internals.MlNetInternals.GetEnvironment(catalog), options);
    }
}
