namespace Vae.ML;

/// <summary>What one training epoch measured. Losses are per image: the epoch's sum divided by its number of rows.</summary>
public sealed record VaeEpochMetrics
{
    /// <summary>1-based epoch number.</summary>
    public int Epoch { get; init; }

    /// <summary>Number of epochs the training runs for.</summary>
    public int TotalEpochs { get; init; }

    /// <summary>
    /// Training loss (reconstruction term + β·KL) with z sampled, as the report's training loop reports it; for the
    /// Gaussian likelihood in nats of the raw (unstandardized) rows.
    /// </summary>
    public double TrainLoss { get; init; }

    /// <summary>The reconstruction part of <see cref="TrainLoss"/>: binary cross-entropy (Bernoulli) or Gaussian negative log-likelihood.</summary>
    public double TrainReconstructionLoss { get; init; }

    /// <summary>The KL divergence part of <see cref="TrainLoss"/>, before weighting by β.</summary>
    public double TrainKlDivergence { get; init; }

    /// <summary>Loss on <see cref="VaeOptions.ValidationData"/> with z sampled, as the PyTorch reference's test loss; null without validation data.</summary>
    public double? ValidationLoss { get; init; }

    /// <summary>Loss on <see cref="VaeOptions.ValidationData"/> at z = μ, which is what the Score column computes; null without validation data.</summary>
    public double? ValidationLossAtMean { get; init; }

    /// <summary>Wall-clock seconds of the epoch's training pass (validation excluded).</summary>
    public double Seconds { get; init; }
}
