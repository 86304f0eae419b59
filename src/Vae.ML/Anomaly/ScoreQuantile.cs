namespace Vae.ML.Anomaly;

/// <summary>The threshold rule: a quantile of the training scores.</summary>
internal static class ScoreQuantile
{
    /// <summary>
    /// The <paramref name="quantile"/> of the finite <paramref name="scores"/>, interpolated linearly between order
    /// statistics (NumPy's default "linear" method, which PyOD uses for its contamination threshold):
    /// h = (n − 1)·q, result = s[⌊h⌋] + (h − ⌊h⌋)·(s[⌊h⌋ + 1] − s[⌊h⌋]). Quantile 1 is the largest score.
    /// </summary>
    public static float Of(IReadOnlyCollection<float> scores, double quantile)
    {
        if (!(quantile >= 0 && quantile <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(quantile), quantile, "The quantile must be in [0, 1].");
        }

        var sorted = scores.Where(float.IsFinite).Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new InvalidOperationException(
                $"Cannot set an anomaly threshold: none of the {scores.Count} training scores is a finite number.");
        }

        var h = (sorted.Length - 1) * quantile;
        var below = (int)Math.Floor(h);
        if (below >= sorted.Length - 1)
        {
            return sorted[^1];
        }

        return (float)(sorted[below] + (h - below) * ((double)sorted[below + 1] - sorted[below]));
    }
}
