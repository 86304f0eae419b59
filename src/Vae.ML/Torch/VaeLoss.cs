using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Vae.ML.Torch;

/// <summary>
/// The report's loss: summed binary cross-entropy plus β·KL(q(z|x) ‖ N(0, I)).
/// BCE is computed from logits (log-sum-exp form): the same value as BCE on sigmoid outputs, without log(0).
/// </summary>
internal static class VaeLoss
{
    /// <summary>Sums over the whole batch, as the report's <c>reduction="sum"</c>.</summary>
    public static (Tensor Total, Tensor Reconstruction, Tensor Kl) Batch(Tensor logits, Tensor x, Tensor mu, Tensor logVar, double beta)
    {
        var bce = F.binary_cross_entropy_with_logits(logits, x, reduction: nn.Reduction.Sum);
        var kl = -0.5 * sum(1 + logVar - mu.pow(2) - logVar.exp());
        return (bce + beta * kl, bce, kl);
    }

    /// <summary>One value per row (for the Score column): BCE + β·KL of each image.</summary>
    /// <remarks>
    /// The same arithmetic as <see cref="Batch"/>, with its scalars disposed here: the ones operators create implicitly
    /// are freed only by .NET's finalizer, and a scoring loop allocates too little managed memory to run the GC, so
    /// they pile up between the batches' tensor buffers and keep the native heap from shrinking (RSS grew ~100 MB per
    /// million rows).
    /// </remarks>
    public static Tensor PerRow(Tensor logits, Tensor x, Tensor mu, Tensor logVar, double beta)
    {
        using Scalar one = 1, two = 2, minusHalf = -0.5, klWeight = beta;
        var bce = F.binary_cross_entropy_with_logits(logits, x, reduction: nn.Reduction.None).sum(1);
        var kl = logVar.add(one).sub(mu.pow(two)).sub(logVar.exp()).sum(1).mul(minusHalf);
        return bce.add(kl.mul(klWeight));
    }
}
