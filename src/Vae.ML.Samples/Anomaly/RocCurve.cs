namespace Vae.ML.Samples.Anomaly;

/// <summary>A receiver operating characteristic: false- and true-positive rates as the threshold falls from +∞.</summary>
internal sealed record RocCurve(double[] FalsePositiveRates, double[] TruePositiveRates)
{
    /// <summary>
    /// The ROC of <paramref name="scores"/> (higher = more anomalous) against <paramref name="anomalous"/>: one point per
    /// distinct score, tied scores moving both rates at once. NaN scores rank lowest.
    /// </summary>
    public static RocCurve From(IReadOnlyList<float> scores, IReadOnlyList<bool> anomalous)
    {
        if (scores.Count != anomalous.Count)
        {
            throw new ArgumentException($"{scores.Count} scores but {anomalous.Count} labels.", nameof(anomalous));
        }

        int positives = anomalous.Count(a => a);
        int negatives = anomalous.Count - positives;
        if (positives == 0 || negatives == 0)
        {
            throw new ArgumentException($"A ROC curve needs both classes; got {positives} anomalies and {negatives} normal rows.", nameof(anomalous));
        }

        int[] order = Enumerable.Range(0, scores.Count).OrderByDescending(i => float.IsNaN(scores[i]) ? float.NegativeInfinity : scores[i]).ToArray();
        var fpr = new List<double> { 0 };
        var tpr = new List<double> { 0 };
        int truePositives = 0, falsePositives = 0;
        for (int k = 0; k < order.Length; k++)
        {
            if (anomalous[order[k]])
            {
                truePositives++;
            }
            else
            {
                falsePositives++;
            }

            bool lastOfTie = k == order.Length - 1 || !Same(scores[order[k]], scores[order[k + 1]]);
            if (lastOfTie)
            {
                fpr.Add((double)falsePositives / negatives);
                tpr.Add((double)truePositives / positives);
            }
        }

        return new RocCurve(fpr.ToArray(), tpr.ToArray());
    }

    /// <summary>Area under the curve (trapezoids), the probability that an anomaly outscores a normal row, ties counting half.</summary>
    public double Area()
    {
        double area = 0;
        for (int i = 1; i < FalsePositiveRates.Length; i++)
        {
            area += (FalsePositiveRates[i] - FalsePositiveRates[i - 1]) * (TruePositiveRates[i] + TruePositiveRates[i - 1]) / 2;
        }

        return area;
    }

    private static bool Same(float a, float b) => a == b || (float.IsNaN(a) && float.IsNaN(b));
}
