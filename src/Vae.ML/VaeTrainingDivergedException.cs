using System.Globalization;

namespace Vae.ML;

/// <summary>
/// Thrown by <see cref="VaeTrainer.Fit(Microsoft.ML.IDataView)"/> when the loss or a gradient becomes NaN or infinite. Training
/// stops at the batch where it first happens, before the optimizer applies that batch's update: no model is returned
/// and no checkpoint is written for the epoch, so earlier checkpoints and saved models stay as they were.
/// </summary>
public sealed class VaeTrainingDivergedException : InvalidOperationException
{
    internal VaeTrainingDivergedException(int epoch, int batch, double learningRate, string what)
        : base(string.Format(CultureInfo.InvariantCulture,
            "VAE training diverged at epoch {0}, batch {1} (learning rate {2}): {3}. No model was returned. Try a lower {4} (the report uses 1e-3) or a smaller {5}.",
            epoch, batch, learningRate, what, nameof(VaeOptions.LearningRate), nameof(VaeOptions.Beta)))
    {
        Epoch = epoch;
        Batch = batch;
        LearningRate = learningRate;
    }

    /// <summary>The 1-based epoch in which the loss or a gradient first became non-finite.</summary>
    public int Epoch { get; }

    /// <summary>The 1-based batch within <see cref="Epoch"/> at which it happened.</summary>
    public int Batch { get; }

    /// <summary>Adam's learning rate of the run.</summary>
    public double LearningRate { get; }
}
