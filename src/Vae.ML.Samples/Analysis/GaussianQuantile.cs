namespace Vae.ML.Samples.Analysis;

/// <summary>
/// Inverse of the standard normal CDF (Acklam's rational approximation, relative error below 1.2e-9), used to
/// place the latent-manifold grid at equal probability steps of the N(0, 1) prior as the Keras VAE example does.
/// </summary>
internal static class GaussianQuantile
{
    private static readonly double[] A = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00];
    private static readonly double[] B = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01];
    private static readonly double[] C = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00];
    private static readonly double[] D = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    private const double LowRegion = 0.02425;

    /// <summary>The z with P(Z &lt;= z) = <paramref name="probability"/> for Z ~ N(0, 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="probability"/> is not strictly between 0 and 1.</exception>
    public static double Inverse(double probability)
    {
        if (!(probability > 0 && probability < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "A probability strictly between 0 and 1 is required.");
        }

        if (probability < LowRegion)
        {
            double q = Math.Sqrt(-2 * Math.Log(probability));
            return Tail(q);
        }

        if (probability > 1 - LowRegion)
        {
            double q = Math.Sqrt(-2 * Math.Log(1 - probability));
            return -Tail(q);
        }

        double centred = probability - 0.5;
        double r = centred * centred;
        return (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * centred
             / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1);
    }

    /// <summary><paramref name="count"/> quantiles at probabilities evenly spaced from <paramref name="low"/> to <paramref name="high"/> (inclusive).</summary>
    public static double[] Grid(int count, double low = 0.05, double high = 0.95)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        if (count == 1)
        {
            return [Inverse((low + high) / 2)];
        }

        var grid = new double[count];
        for (int i = 0; i < count; i++)
        {
            grid[i] = Inverse(low + (high - low) * i / (count - 1));
        }

        return grid;
    }

    private static double Tail(double q) =>
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
        / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
}
