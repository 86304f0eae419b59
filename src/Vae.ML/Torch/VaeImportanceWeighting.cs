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
    /// <summary>Decoder rows per forward pass (samples × rows); bounds memory at roughly 100 MB for 784 features.</summary>
    private const int DecodedRowsPerPass = 16_384;

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
            var x = model.ToDevice(copy, rows, model.InputSize);
            var (mu, logVar) = model.Network.Encode(x);
            var std = (0.5 * logVar).exp();
            var gaussian = model.Gaussian;
            var logWeights = new List<Tensor>();
            int samplesPerPass = Math.Max(1, DecodedRowsPerPass / rows);
            for (int done = 0; done < samples; done += samplesPerPass)
            {
                int count = Math.Min(samplesPerPass, samples - done);
                using var pass = torch.NewDisposeScope();
                // eps: count × rows × latent, drawn on the CPU so a seed means the same estimate on every device.
                var eps = torch.randn(new long[] { count, rows, model.LatentDimension }, generator: generator).to(mu.device);
                var z = mu.unsqueeze(0) + eps * std.unsqueeze(0);
                var decoded = model.Network.DecodeLogits(z.reshape(-1, model.LatentDimension));
                var target = x.unsqueeze(0).expand(count, -1, -1).reshape(-1, model.InputSize);
                var logPxGivenZ = -VaeLoss.ReconstructionPerRow(decoded, target, gaussian).reshape(count, rows);
                var logPz = (z.pow(2) + LogTwoPi).sum(2) * -0.5;
                var logQzGivenX = (eps.pow(2) + logVar.unsqueeze(0) + LogTwoPi).sum(2) * -0.5;
                logWeights.Add((logPxGivenZ + logPz - logQzGivenX).to_type(ScalarType.Float64).MoveToOuterDisposeScope());
            }

            var all = torch.cat(logWeights, 0); // samples × rows
            var estimate = all.logsumexp(0) - Math.Log(samples);
            return estimate.cpu().data<double>().ToArray();
        });
    }
}
