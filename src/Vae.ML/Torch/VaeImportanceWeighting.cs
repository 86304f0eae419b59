using TorchSharp;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>
/// The importance-weighted estimate of log p(x) (IWAE bound, Burda, Grosse and Salakhutdinov, 2015):
/// log p(x) ≥ log (1/k) Σᵢ p(x|zᵢ) p(zᵢ) / q(zᵢ|x), zᵢ ~ q(z|x). With k = 1 it is the (sampled) ELBO; it tightens
/// towards log p(x) as k grows. Log-weights are computed in float32 per sample and combined with log-sum-exp in float64.
/// </summary>
internal static class VaeImportanceWeighting
{
    /// <summary>
    /// Decoder rows per forward pass (samples × rows). A pass holds about seven tensors of this many rows × features
    /// until it ends (logits, the expanded target, the decoder's hidden layer, the loss's temporaries): 2,048 rows of 784
    /// features keep that near 50 MB. At 16,384 rows a pass held ≈ 400 MB, and the report's k = 200 estimate raised
    /// the process's peak RSS by 1.1 GB. The noise is drawn per pass in sample order; the split is a function of the row
    /// count, so the same rows, samples and seed give the same estimate. (libtorch draws fewer than 16 normal values by another
    /// method than more, so one draw of k × rows × latent values can differ from the same count drawn in passes.)
    /// </summary>
    private const int DecodedRowsPerPass = 2_048;

    /// <summary>Decoded rows between two hand-backs of the heap's free pages (see the loop).</summary>
    private const int DecodedRowsBetweenHeapTrims = 16_384;

    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);

    /// <summary>
    /// log p(x) per row, in nats, for <paramref name="rows"/> rows of raw features (standardized here for the Gaussian
    /// likelihood, whose density is then of the raw row). Draws the noise from <paramref name="generator"/> (CPU).
    /// </summary>
    public static double[] LogLikelihood(VaeModel model, ReadOnlySpan<float> inputs, int rows, int samples, Generator generator)
    {
        var result = new double[rows];
        if (rows == 0)
        {
            return result;
        }

        var copy = inputs.ToArray();
        return model.UnderForwardLock(() =>
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            // TorchSharp 0.107's operators leave the Scalar they make of a number to the finalizer: small native blocks
            // that live on between the freed tensor blocks and keep glibc from reusing them (k = 200 over 1,000 rows:
            // +690 MB with them, +530 MB without). Explicit Scalars, disposed here, do the same arithmetic.
            using Scalar half = 0.5, minusHalf = -0.5, two = 2, logTwoPi = LogTwoPi, logSamples = Math.Log(samples);
            var x = model.ToDevice(copy, rows, model.InputSize);
            var (mu, logVar) = model.Network.Encode(x);
            var std = logVar.mul(half).exp();
            var gaussian = model.Gaussian;
            var logWeights = torch.empty(new long[] { samples, rows }, ScalarType.Float64, device: mu.device); // samples × rows
            int samplesPerPass = Math.Max(1, DecodedRowsPerPass / rows);
            long decodedSinceTrim = 0;
            for (int done = 0; done < samples; done += samplesPerPass)
            {
                int count = Math.Min(samplesPerPass, samples - done);
                using (torch.NewDisposeScope())
                {
                    // eps: count × rows × latent, drawn on the CPU so a seed means the same estimate on every device.
                    var eps = torch.randn(new long[] { count, rows, model.LatentDimension }, generator: generator).to(mu.device);
                    var z = mu.unsqueeze(0) + eps * std.unsqueeze(0);
                    var decoded = model.Network.DecodeLogits(z.reshape(-1, model.LatentDimension));
                    var target = x.unsqueeze(0).expand(count, -1, -1).reshape(-1, model.InputSize);
                    var logPxGivenZ = -VaeLoss.ReconstructionPerRow(decoded, target, gaussian).reshape(count, rows);
                    var logPz = z.pow(two).add(logTwoPi).sum(2).mul(minusHalf);
                    var logQzGivenX = eps.pow(two).add(logVar.unsqueeze(0)).add(logTwoPi).sum(2).mul(minusHalf);
                    logWeights.narrow(0, done, count).copy_((logPxGivenZ + logPz - logQzGivenX).to_type(ScalarType.Float64));
                }

                // libtorch's worker threads allocate and free part of a pass's blocks in glibc arenas of their own,
                // which keep freed pages resident: with 2 threads, k = 200 over 1,000 rows left ≈ 500 MB behind.
                // Handing the free pages back now and then keeps RSS flat; after every pass it cost +30 % CPU time
                // (the next pass faults its pages in again), every 16,384 decoded rows costs a few per cent.
                decodedSinceTrim += (long)count * rows;
                if (decodedSinceTrim >= DecodedRowsBetweenHeapTrims)
                {
                    decodedSinceTrim = 0;
                    Runtime.NativeHeap.ReleaseFreePages();
                }
            }

            var estimate = logWeights.logsumexp(0).sub(logSamples);
            return estimate.cpu().data<double>().ToArray();
        });
    }
}
