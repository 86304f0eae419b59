using System.Numerics.Tensors;

namespace Vae.ML.Torch;

/// <summary>
/// The Bernoulli reconstruction term of the CPU training step: the summed binary cross-entropy from logits (as
/// <c>binary_cross_entropy_with_logits(reduction: sum)</c>) and its gradient, in one pass over each row.
/// </summary>
internal static class BernoulliTerm
{
    /// <summary>
    /// Σ [softplus(l) − l·x] over the batch (each row summed in float, the rows in double), and ∂/∂l = σ(l) − x into
    /// <paramref name="gradient"/>. <paramref name="scratch"/> holds one row.
    /// </summary>
    public static double LossAndGradient(StepMatrix logits, ReadOnlySpan<float> x, StepMatrix gradient, Span<float> scratch)
    {
        var width = logits.Columns;
        var total = 0.0;
        for (var row = 0; row < logits.Rows; row++)
        {
            ReadOnlySpan<float> l = logits.Row(row);
            var xr = x.Slice(row * width, width);
            var g = gradient.Row(row);
            var t = scratch[..width];

            // softplus(l) = max(l, 0) + log(1 + e^−|l|) = max(l, 0) − log σ(|l|), and σ(|l|) = max(σ(l), 1 − σ(l)):
            // the sigmoid the gradient needs gives the loss without log(0) (σ(|l|) ≥ ½).
            TensorPrimitives.Sigmoid(l, g);
            TensorPrimitives.Subtract(1f, g, t);
            TensorPrimitives.Max(g, t, t);
            TensorPrimitives.Log(t, t);

            // Σ max(l, 0) = ½ (Σ l + Σ |l|).
            var positivePart = 0.5f * (TensorPrimitives.Sum(l) + TensorPrimitives.SumOfMagnitudes(l));
            total += positivePart - TensorPrimitives.Sum(t) - TensorPrimitives.Dot(l, xr);

            // ∂/∂l [softplus(l) − l·x] = σ(l) − x.
            TensorPrimitives.Subtract(g, xr, g);
        }

        return total;
    }
}

/// <summary>
/// The Gaussian reconstruction term of the CPU training step, as <see cref="VaeLoss"/> defines it:
/// ½ Σ [log 2π + lv + (x − μ)² e^−lv] over the batch's standardized values plus rows · Σ log std, where
/// lv = max(θ, <see cref="GaussianDecoder.MinLogVariance"/>) is the decoder's learned log σ² per feature; and its
/// gradients at the decoded means and at θ.
/// </summary>
internal static class GaussianTerm
{
    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);

    /// <summary>
    /// The batch's summed term; ∂/∂μ into <paramref name="gradient"/> and ∂/∂θ into <paramref name="logVarianceGradient"/>.
    /// <paramref name="precision"/> and <paramref name="scratch"/> hold one row each.
    /// </summary>
    public static double LossAndGradient(StepMatrix mean, ReadOnlySpan<float> x, StepMatrix gradient, ReadOnlySpan<float> logVariance,
        Span<float> logVarianceGradient, double logStdSum, Span<float> precision, Span<float> scratch)
    {
        var width = mean.Columns;
        Span<float> inverse = precision[..width], t = scratch[..width];
        var floor = (float)GaussianDecoder.MinLogVariance;

        // e^−lv per feature, and Σ (lv + log 2π) once per row.
        TensorPrimitives.Max(logVariance, floor, inverse);
        var perRow = TensorPrimitives.Sum(inverse) + (width * LogTwoPi);
        TensorPrimitives.Negate(inverse, inverse);
        TensorPrimitives.Exp(inverse, inverse);

        // logVarianceGradient first gathers Σ_rows (x − μ)² e^−lv.
        logVarianceGradient.Clear();
        var squares = 0.0;
        for (var row = 0; row < mean.Rows; row++)
        {
            var g = gradient.Row(row);
            TensorPrimitives.Subtract(mean.Row(row), x.Slice(row * width, width), g);
            TensorPrimitives.Multiply(g, g, t);
            TensorPrimitives.Multiply(t, inverse, t);
            squares += TensorPrimitives.Sum(t);
            TensorPrimitives.Add(logVarianceGradient, t, logVarianceGradient);

            // ∂/∂μ ½ (x − μ)² e^−lv = (μ − x) e^−lv.
            TensorPrimitives.Multiply(g, inverse, g);
        }

        // ∂/∂lv ½ [lv + (x − μ)² e^−lv] = ½ [1 − (x − μ)² e^−lv], summed over rows; clamp_min passes it where θ ≥ floor.
        for (var i = 0; i < width; i++)
        {
            logVarianceGradient[i] = logVariance[i] >= floor ? 0.5f * (mean.Rows - logVarianceGradient[i]) : 0;
        }

        return (0.5 * (squares + (mean.Rows * perRow))) + (mean.Rows * logStdSum);
    }
}

/// <summary>
/// The latent part of the CPU training step: the reparameterisation z = μ + ε·σ with σ = e^{½ log σ²}, the
/// KL(q(z|x) ‖ N(0, I)) term and their gradients. The latent is a few values per row, so plain loops in double.
/// </summary>
internal static class GaussianLatent
{
    /// <summary>z = μ + ε·e^{½ log σ²}, element by element.</summary>
    public static void Sample(ReadOnlySpan<float> mu, ReadOnlySpan<float> logVar, ReadOnlySpan<float> epsilon, Span<float> z)
    {
        for (var i = 0; i < z.Length; i++)
        {
            z[i] = mu[i] + (epsilon[i] * MathF.Exp(0.5f * logVar[i]));
        }
    }

    /// <summary>KL = −½ Σ (1 + log σ² − μ² − σ²) over the batch.</summary>
    public static double Kl(ReadOnlySpan<float> mu, ReadOnlySpan<float> logVar)
    {
        var sum = 0.0;
        for (var i = 0; i < mu.Length; i++)
        {
            double m = mu[i], lv = logVar[i];
            sum += 1 + lv - (m * m) - Math.Exp(lv);
        }

        return -0.5 * sum;
    }

    /// <summary>
    /// The gradients at μ and log σ² of reconstruction(z) + β·KL, given ∂L/∂z: each reaches them through z and
    /// through the KL term.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> zGradient, ReadOnlySpan<float> mu, ReadOnlySpan<float> logVar, ReadOnlySpan<float> epsilon,
        double beta, Span<float> muGradient, Span<float> logVarGradient)
    {
        for (var i = 0; i < mu.Length; i++)
        {
            var sigma = Math.Exp(0.5 * logVar[i]);

            // ∂z/∂μ = 1 and ∂KL/∂μ = μ.
            muGradient[i] = (float)(zGradient[i] + (beta * mu[i]));

            // ∂z/∂log σ² = ½ ε σ and ∂KL/∂log σ² = ½ (σ² − 1).
            logVarGradient[i] = (float)((zGradient[i] * 0.5 * epsilon[i] * sigma) + (beta * 0.5 * ((sigma * sigma) - 1)));
        }
    }
}
