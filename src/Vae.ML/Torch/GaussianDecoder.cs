using TorchSharp;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>
/// The state of the Gaussian likelihood (<see cref="VaeLikelihood.Gaussian"/>) besides the decoder's mean: the learned
/// per-feature log-variance parameter and the feature standardization, with their names in model files.
/// </summary>
internal static class GaussianDecoder
{
    /// <summary>The network's learned log σ² per feature (in standardized units), registered after fc4.</summary>
    public const string LogVarianceName = "decoder_log_var";

    /// <summary>Per-feature training mean, stored with the weights (0 when standardization is off).</summary>
    public const string MeanName = "standardization.mean";

    /// <summary>Per-feature training standard deviation, stored with the weights (1 when off or for a constant feature).</summary>
    public const string StdName = "standardization.std";

    /// <summary>
    /// Floor of log σ² in standardized units (σ ≥ 0.03 standard deviations). Without it a feature the decoder reproduces
    /// exactly (a constant one) drives σ² to 0 and the loss to −∞.
    /// </summary>
    public static readonly double MinLogVariance = Math.Log(1e-3);

    /// <summary>True for the standardization's tensors: stored with the weights, but not trained (no optimizer state).</summary>
    public static bool IsStandardization(string name) => name is MeanName or StdName;
}

/// <summary>The Gaussian terms the loss needs: the decoder's log σ² parameter and Σ log std (raw-unit density).</summary>
internal sealed record GaussianTerms(Tensor LogVariance, double LogStdSum);

/// <summary>
/// x ↦ (x − mean) / std per feature. The network only sees standardized values; Score adds Σ log std so it is the
/// density of the raw row, and reconstructions are mapped back to raw units.
/// </summary>
internal sealed class FeatureStandardization
{
    public FeatureStandardization(float[] mean, float[] std)
    {
        if (mean.Length != std.Length)
        {
            throw new ArgumentException($"Standardization has {mean.Length} means but {std.Length} standard deviations.");
        }

        if (mean.Any(m => !float.IsFinite(m)) || std.Any(s => !(s > 0) || !float.IsFinite(s)))
        {
            throw new InvalidDataException("Standardization needs finite means and finite positive standard deviations.");
        }

        Mean = mean;
        Std = std;
        LogStdSum = std.Sum(s => Math.Log(s));
    }

    public float[] Mean { get; }

    public float[] Std { get; }

    /// <summary>Σ log std: what the log-density of a standardized row differs from that of the raw row.</summary>
    public double LogStdSum { get; }

    public int Width => Mean.Length;

    /// <summary>Mean 0, std 1: the Gaussian likelihood on the data as given.</summary>
    public static FeatureStandardization Identity(int width) => new(new float[width], Enumerable.Repeat(1f, width).ToArray());

    public Tensor Standardize(Tensor x)
    {
        using var mean = Vector(Mean, x.device);
        using var std = Vector(Std, x.device);
        using var centred = x.sub(mean);
        return centred.div(std);
    }

    public Tensor Unstandardize(Tensor standardized)
    {
        using var mean = Vector(Mean, standardized.device);
        using var std = Vector(Std, standardized.device);
        using var scaled = standardized.mul(std);
        return scaled.add(mean);
    }

    private static Tensor Vector(float[] values, Device device)
    {
        var cpu = torch.tensor(values);
        if (device.type == DeviceType.CPU)
        {
            return cpu;
        }

        using (cpu)
        {
            return cpu.to(device);
        }
    }

    /// <summary>Accumulates per-feature mean and variance over rows (in double, Welford) for <see cref="Build"/>.</summary>
    internal sealed class Builder(int width)
    {
        private readonly double[] _mean = new double[width];
        private readonly double[] _m2 = new double[width];
        private long _rows;

        public void Add(ReadOnlySpan<float> row)
        {
            _rows++;
            for (var i = 0; i < _mean.Length; i++)
            {
                var delta = row[i] - _mean[i];
                _mean[i] += delta / _rows;
                _m2[i] += delta * (row[i] - _mean[i]);
            }
        }

        /// <summary>
        /// The population standard deviation, as scikit-learn's StandardScaler; a feature whose spread is zero or below
        /// float32's resolution of its mean (constant up to rounding) gets std 1, so it is only centred and never NaN.
        /// </summary>
        public FeatureStandardization Build()
        {
            var mean = new float[_mean.Length];
            var std = new float[_mean.Length];
            for (var i = 0; i < mean.Length; i++)
            {
                mean[i] = (float)_mean[i];
                var s = _rows > 0 ? Math.Sqrt(_m2[i] / _rows) : 0;
                var constant = !(s >= 1e-30) || s <= 10 * 1.1920929e-7 * Math.Abs(_mean[i]) || !float.IsFinite((float)s);
                std[i] = constant ? 1f : (float)s;
            }

            return new FeatureStandardization(mean, std);
        }
    }
}
