using System.Text.Json.Serialization;

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

    /// <summary>
    /// The weight of the KL term in this epoch's <see cref="TrainLoss"/>: <see cref="VaeOptions.Beta"/>, or less during
    /// the <see cref="VaeOptions.KlWarmupEpochs"/>. Validation losses always use the final β. Null in histories saved by
    /// a Vae.ML that did not record it.
    /// </summary>
    public double? KlWeight { get; init; }

    /// <summary>
    /// With <see cref="VaeOptions.EarlyStoppingPatience"/>: epochs since <see cref="ValidationLossAtMean"/> last reached a
    /// new low (0 when this epoch did). Null without early stopping.
    /// </summary>
    public int? EpochsWithoutImprovement { get; init; }

    /// <summary>
    /// True on the one epoch whose weights the trained model holds when <see cref="VaeOptions.EarlyStoppingPatience"/>
    /// is set (the lowest <see cref="ValidationLossAtMean"/>). Set in the final history, not in progress reports.
    /// </summary>
    public bool IsBestEpoch { get; init; }

    /// <summary>On the last epoch trained: why training stopped there. Null on every other epoch.</summary>
    public VaeStopReason? StopReason { get; init; }
}

/// <summary>Why a training run stopped (<see cref="VaeEpochMetrics.StopReason"/>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<VaeStopReason>))]
public enum VaeStopReason
{
    /// <summary>All <see cref="VaeOptions.Epochs"/> ran.</summary>
    Completed,

    /// <summary>
    /// <see cref="VaeOptions.EarlyStoppingPatience"/> epochs passed without a new lowest validation loss; the model holds
    /// the best epoch's weights.
    /// </summary>
    EarlyStopping,
}

/// <summary>Progress within an epoch, reported to <see cref="VaeOptions.BatchProgress"/> after a training batch.</summary>
public sealed record VaeBatchProgress
{
    /// <summary>1-based epoch number.</summary>
    public int Epoch { get; init; }

    /// <summary>Number of epochs the training runs for (early stopping may end it sooner).</summary>
    public int TotalEpochs { get; init; }

    /// <summary>1-based number of the batch just trained, within the epoch.</summary>
    public int Batch { get; init; }

    /// <summary>Batches in one epoch: rows ÷ <see cref="VaeOptions.BatchSize"/>, rounded up.</summary>
    public int TotalBatches { get; init; }

    /// <summary>Rows trained on so far in this epoch.</summary>
    public long Rows { get; init; }

    /// <summary>Rows in one epoch.</summary>
    public long TotalRows { get; init; }

    /// <summary>The epoch's training loss so far, per row (as <see cref="VaeEpochMetrics.TrainLoss"/> is at the end).</summary>
    public double TrainLoss { get; init; }

    /// <summary>The fraction of the epoch done, <see cref="Rows"/> ÷ <see cref="TotalRows"/>, in [0, 1].</summary>
    public double EpochFraction => TotalRows == 0 ? 1 : (double)Rows / TotalRows;
}
