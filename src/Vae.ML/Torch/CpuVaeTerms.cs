using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Vae.ML.Torch;

/// <summary>
/// The Bernoulli reconstruction term of the CPU training step: the summed binary cross-entropy from logits (as
/// <c>binary_cross_entropy_with_logits(reduction: sum)</c>) and its gradient, in one pass over each row.
/// </summary>
internal static class BernoulliTerm
{
    // Per element: a sigmoid (an exponential), a logarithm and about ten more float operations.
    private const int CostPerElement = 24;

    /// <summary>
    /// Σ [softplus(l) − l·x] over the batch (each row summed in float, the rows in double, in row order), and
    /// ∂/∂l = σ(l) − x into <paramref name="gradient"/>. Rows are cut by <paramref name="partition"/>; each range uses
    /// its own row of <paramref name="scratch"/> (one row per part) and writes its rows' sums into
    /// <paramref name="rowSums"/> (one per row), which are added up afterwards in row order: the same bits on any
    /// number of threads.
    /// </summary>
    public static double LossAndGradient(StepMatrix logits, StepRows x, StepMatrix gradient, float[] scratch, float[] rowSums, StepPartition partition)
    {
        var width = logits.Columns;
        partition.For(logits.Rows, width * CostPerElement, (part, first, end) =>
        {
            var t = scratch.AsSpan(part * width, width);
            for (var row = first; row < end; row++)
            {
                ReadOnlySpan<float> l = logits.Row(row);
                var xr = x.Row(row);
                var g = gradient.Row(row);

                // softplus(l) = max(l, 0) + log(1 + e^−|l|) = max(l, 0) − log σ(|l|), and σ(|l|) = max(σ(l), 1 − σ(l)):
                // the sigmoid the gradient needs gives the loss without log(0) (σ(|l|) ≥ ½). Four passes over the row
                // (two of them the exponential's and the logarithm's) instead of nine.
                TensorPrimitives.Sigmoid(l, g);
                LargerOfComplements(g, t);
                TensorPrimitives.Log(t, t);
                rowSums[row] = RowLossAndGradient(l, xr, t, g);
            }
        });

        var total = 0.0;
        for (var row = 0; row < logits.Rows; row++)
        {
            total += rowSums[row];
        }

        return total;
    }

    /// <summary>t ← max(σ, 1 − σ) element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LargerOfComplements(ReadOnlySpan<float> sigmoid, Span<float> t)
    {
        var width = Vector<float>.Count;
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= sigmoid.Length - width; i += width)
            {
                var s = new Vector<float>(sigmoid.Slice(i, width));
                Vector.Max(s, Vector<float>.One - s).CopyTo(t.Slice(i, width));
            }
        }

        for (; i < sigmoid.Length; i++)
        {
            t[i] = Math.Max(sigmoid[i], 1 - sigmoid[i]);
        }
    }

    /// <summary>
    /// One row's Σ [max(l, 0) − log σ(|l|) − l·x] from the logits, the row's x and log σ(|l|), and the gradient σ − x
    /// into <paramref name="gradient"/> (which holds σ), in one pass instead of five: the three sums in vector lanes,
    /// then the tail.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float RowLossAndGradient(ReadOnlySpan<float> logits, ReadOnlySpan<float> x, ReadOnlySpan<float> logSigmoid, Span<float> gradient)
    {
        var width = Vector<float>.Count;
        var i = 0;
        float positive = 0, logs = 0, products = 0;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<float> positiveSum = Vector<float>.Zero, logSum = Vector<float>.Zero, productSum = Vector<float>.Zero;
            for (; i <= logits.Length - width; i += width)
            {
                var l = new Vector<float>(logits.Slice(i, width));
                var xv = new Vector<float>(x.Slice(i, width));
                positiveSum += Vector.Max(l, Vector<float>.Zero);
                logSum += new Vector<float>(logSigmoid.Slice(i, width));
                productSum += l * xv;
                (new Vector<float>(gradient.Slice(i, width)) - xv).CopyTo(gradient.Slice(i, width));
            }

            (positive, logs, products) = (Vector.Sum(positiveSum), Vector.Sum(logSum), Vector.Sum(productSum));
        }

        for (; i < logits.Length; i++)
        {
            positive += Math.Max(logits[i], 0);
            logs += logSigmoid[i];
            products += logits[i] * x[i];
            gradient[i] -= x[i];
        }

        return positive - logs - products;
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
    // Per element: a subtraction, three multiplications and the sums.
    private const int CostPerElement = 6;

    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);

    /// <summary>
    /// The batch's summed term; ∂/∂μ into <paramref name="gradient"/> and ∂/∂θ into <paramref name="logVarianceGradient"/>.
    /// <paramref name="precision"/> and <paramref name="columnSums"/> hold one row, <paramref name="squares"/> the
    /// batch's (x − μ)² e^−lv, <paramref name="rowSums"/> one value per row. Rows, then columns for the per-feature
    /// sums over the rows, are cut by <paramref name="partition"/>; every sum still runs in row order.
    /// </summary>
    public static double LossAndGradient(StepMatrix mean, StepRows x, StepMatrix gradient, ReadOnlySpan<float> logVariance,
        Span<float> logVarianceGradient, double logStdSum, float[] precision, StepMatrix squares, float[] rowSums, float[] columnSums, StepPartition partition)
    {
        var width = mean.Columns;
        var inverse = precision.AsSpan(0, width);
        var floor = (float)GaussianDecoder.MinLogVariance;

        // e^−lv per feature, and Σ (lv + log 2π) once per row.
        TensorPrimitives.Max(logVariance, floor, inverse);
        var perRow = TensorPrimitives.Sum(inverse) + (width * LogTwoPi);
        TensorPrimitives.Negate(inverse, inverse);
        TensorPrimitives.Exp(inverse, inverse);

        partition.For(mean.Rows, width * CostPerElement, (_, first, end) =>
        {
            var e = precision.AsSpan(0, width);
            for (var row = first; row < end; row++)
            {
                var g = gradient.Row(row);
                var t = squares.Row(row);
                TensorPrimitives.Subtract(mean.Row(row), x.Row(row), g);
                TensorPrimitives.Multiply(g, g, t);
                TensorPrimitives.Multiply(t, e, t);
                rowSums[row] = TensorPrimitives.Sum(t);

                // ∂/∂μ ½ (x − μ)² e^−lv = (μ − x) e^−lv.
                TensorPrimitives.Multiply(g, e, g);
            }
        });

        // Σ_rows (x − μ)² e^−lv per feature, by columns so each sum runs over the rows in order.
        partition.For(width, mean.Rows, (_, first, end) =>
        {
            var sums = columnSums.AsSpan(first, end - first);
            sums.Clear();
            for (var row = 0; row < mean.Rows; row++)
            {
                TensorPrimitives.Add(sums, squares.Row(row)[first..end], sums);
            }
        }, StepPartition.FloatsPerCacheLine);

        var squaresTotal = 0.0;
        for (var row = 0; row < mean.Rows; row++)
        {
            squaresTotal += rowSums[row];
        }

        // ∂/∂lv ½ [lv + (x − μ)² e^−lv] = ½ [1 − (x − μ)² e^−lv], summed over rows; clamp_min passes it where θ ≥ floor.
        for (var i = 0; i < width; i++)
        {
            logVarianceGradient[i] = logVariance[i] >= floor ? 0.5f * (mean.Rows - columnSums[i]) : 0;
        }

        return (0.5 * (squaresTotal + (mean.Rows * perRow))) + (mean.Rows * logStdSum);
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
