using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Vae.ML.Torch;

/// <summary>
/// The negative ELBO: reconstruction term plus β·KL(q(z|x) ‖ N(0, I)). The reconstruction term is the report's summed
/// binary cross-entropy (Bernoulli), computed from logits (log-sum-exp form): the same value as BCE on sigmoid outputs,
/// without log(0); or, with <see cref="GaussianTerms"/>, the Gaussian negative log-likelihood in nats
/// ½ Σ [log 2π + log σ² + (x − μ)²/σ²] of the standardized row plus Σ log std, i.e. of the raw row.
/// </summary>
internal static class VaeLoss
{
    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);

    /// <summary>
    /// Sums over the whole batch, as the report's <c>reduction="sum"</c>. <c>decoded</c> is the decoder's output: logits
    /// (Bernoulli) or the mean of the standardized features (Gaussian).
    /// </summary>
    /// <remarks>Its scalars are disposed here, as in <see cref="PerRow"/>: an evaluation pass calls it for every batch.</remarks>
    public static (Tensor Total, Tensor Reconstruction, Tensor Kl) Batch(Tensor decoded, Tensor x, Tensor mu, Tensor logVar, double beta, GaussianTerms? gaussian = null)
    {
        using Scalar one = 1, two = 2, minusHalf = -0.5, klWeight = beta;
        Tensor reconstruction;
        if (gaussian is null)
        {
            reconstruction = F.binary_cross_entropy_with_logits(decoded, x, reduction: nn.Reduction.Sum);
        }
        else
        {
            using Scalar logStdSums = x.shape[0] * gaussian.LogStdSum;
            reconstruction = GaussianNll(decoded, x, gaussian).sum().add(logStdSums);
        }

        var kl = logVar.add(one).sub(mu.pow(two)).sub(logVar.exp()).sum().mul(minusHalf);
        return (reconstruction.add(kl.mul(klWeight)), reconstruction, kl);
    }

    /// <summary>One value per row (for the Score column): reconstruction term + β·KL of each row.</summary>
    /// <remarks>
    /// The same arithmetic as <see cref="Batch"/>, with its scalars disposed here: the ones operators create implicitly
    /// are freed only by .NET's finalizer, and a scoring loop allocates too little managed memory to run the GC, so
    /// they pile up between the batches' tensor buffers and keep the native heap from shrinking (RSS grew ~100 MB per
    /// million rows).
    /// </remarks>
    public static Tensor PerRow(Tensor decoded, Tensor x, Tensor mu, Tensor logVar, double beta, GaussianTerms? gaussian = null)
    {
        using Scalar one = 1, two = 2, minusHalf = -0.5, klWeight = beta;
        var reconstruction = ReconstructionPerRow(decoded, x, gaussian);
        var kl = logVar.add(one).sub(mu.pow(two)).sub(logVar.exp()).sum(1).mul(minusHalf);
        return reconstruction.add(kl.mul(klWeight));
    }

    /// <summary>The reconstruction term −log p(x|z) of each row: summed BCE from logits, or the raw-unit Gaussian NLL.</summary>
    public static Tensor ReconstructionPerRow(Tensor decoded, Tensor x, GaussianTerms? gaussian = null)
    {
        if (gaussian is null)
        {
            return F.binary_cross_entropy_with_logits(decoded, x, reduction: nn.Reduction.None).sum(1);
        }

        using Scalar logStdSum = gaussian.LogStdSum;
        return GaussianNll(decoded, x, gaussian).sum(1).add(logStdSum);
    }

    /// <summary>Per element ½[log 2π + log σ² + (x − μ)²/σ²], log σ² floored at <see cref="GaussianDecoder.MinLogVariance"/>.</summary>
    internal static Tensor GaussianNll(Tensor mean, Tensor x, GaussianTerms gaussian)
    {
        using Scalar floor = GaussianDecoder.MinLogVariance, two = 2, half = 0.5, logTwoPi = LogTwoPi;
        var logVariance = gaussian.LogVariance.clamp_min(floor);
        return x.sub(mean).pow(two).mul(logVariance.neg().exp()).add(logVariance).add(logTwoPi).mul(half);
    }
}
