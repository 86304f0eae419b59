namespace Vae.ML.Samples.Bench;

/// <summary>Median and range of repeated measurements (the machines are noisy: a single figure would mislead).</summary>
/// <param name="Median">Middle value.</param>
/// <param name="Min">Smallest value.</param>
/// <param name="Max">Largest value.</param>
/// <param name="Count">Number of measurements.</param>
internal sealed record Spread(double Median, double Min, double Max, int Count)
{
    /// <summary>The spread of <paramref name="values"/> (at least one).</summary>
    public static Spread Of(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new ArgumentException("A spread needs at least one measurement.", nameof(values));
        }

        return new Spread(Percentile(sorted, 0.5), sorted[0], sorted[^1], sorted.Length);
    }

    /// <summary>Linear-interpolated percentile <paramref name="p"/> (0..1) of ascending <paramref name="sorted"/>.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        double position = p * (sorted.Count - 1);
        int lower = (int)Math.Floor(position);
        int upper = Math.Min(lower + 1, sorted.Count - 1);
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
    }

    /// <summary>This spread with every value multiplied by <paramref name="factor"/> (unit changes).</summary>
    public Spread Scale(double factor) => factor >= 0
        ? new Spread(Median * factor, Min * factor, Max * factor, Count)
        : new Spread(Median * factor, Max * factor, Min * factor, Count);
}
