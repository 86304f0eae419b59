using Vae.ML.Samples.Reporting;

namespace Vae.ML.Samples.Analysis;

/// <summary>Turns the report's claims about the loss curve ("decreases monotonically", "converges after ~15 epochs") into numbers.</summary>
internal static class TrainingCurveAnalysis
{
    /// <summary>Default convergence threshold: an epoch counts as improving when it removes at least 1% of the total drop.</summary>
    public const double DefaultConvergenceThreshold = 0.01;

    /// <summary>Summarises the train-loss curve of <paramref name="epochs"/> (ordered by epoch).</summary>
    public static TrainingCurveSummary Summarize(IReadOnlyList<EpochRecord> epochs, double convergenceThreshold = DefaultConvergenceThreshold)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(convergenceThreshold);
        if (epochs.Count == 0)
        {
            throw new ArgumentException("The training history is empty; at least one epoch is needed.", nameof(epochs));
        }

        double[] losses = epochs.Select(e => e.TrainLoss).ToArray();
        var increases = new List<int>();
        for (int i = 1; i < losses.Length; i++)
        {
            if (!(losses[i] < losses[i - 1]))
            {
                increases.Add(epochs[i].Epoch);
            }
        }

        double totalDrop = losses[0] - losses[^1];
        return new TrainingCurveSummary
        {
            TrainLossMonotone = increases.Count == 0,
            TrainLossIncreases = increases,
            TrainLossTotalDrop = totalDrop,
            ConvergenceThreshold = convergenceThreshold,
            ConvergenceEpoch = ConvergenceEpoch(epochs, convergenceThreshold),
        };
    }

    /// <summary>
    /// First epoch e such that every later epoch improves the train loss by less than
    /// <paramref name="threshold"/> x (first loss - last loss). Null when there are fewer than two epochs
    /// or the loss did not drop overall (nothing converged).
    /// </summary>
    public static int? ConvergenceEpoch(IReadOnlyList<EpochRecord> epochs, double threshold = DefaultConvergenceThreshold)
    {
        if (epochs.Count < 2)
        {
            return null;
        }

        double totalDrop = epochs[0].TrainLoss - epochs[^1].TrainLoss;
        if (!(totalDrop > 0))
        {
            return null;
        }

        double minimumImprovement = threshold * totalDrop;
        // Walk back from the end while the improvement into an epoch stays small; we stop at the last epoch that still
        // improved by the threshold or more, after which every improvement is small.
        int convergedIndex = epochs.Count - 1;
        while (convergedIndex > 0 && epochs[convergedIndex - 1].TrainLoss - epochs[convergedIndex].TrainLoss < minimumImprovement)
        {
            convergedIndex--;
        }

        return epochs[convergedIndex].Epoch;
    }
}
