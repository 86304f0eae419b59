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
