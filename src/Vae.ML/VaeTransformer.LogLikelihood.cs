using Microsoft.ML;
using Vae.ML.Data;
using Vae.ML.Torch;

namespace Vae.ML;

public sealed partial class VaeTransformer
{
    /// <summary>Rows encoded together by <see cref="LogLikelihood"/>; the samples of each batch are decoded in passes of bounded size.</summary>
    private const int LogLikelihoodRowsPerBatch = 128;

    /// <summary>
    /// Estimates the log-likelihood log p(x) of the rows of <paramref name="data"/> under this VAE with
    /// <paramref name="samples"/> importance samples per row (the IWAE bound of Burda et al., 2015): the mean over rows
    /// of log (1/k) Σᵢ p(x|zᵢ) p(zᵢ) / q(zᵢ|x), zᵢ ~ q(z|x), in nats.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Sign: log p(x) is negative for the Bernoulli likelihood (a probability below 1); papers and the report quote the
    /// negative log-likelihood NLL = −log p(x), e.g. 148 nats for the report's MNIST model with k = 200. The estimate is
    /// a lower bound of log p(x) that rises towards it as k grows (k = 1 is a one-sample ELBO); k = 200 is the usual
    /// figure, k = 1000 the tighter one. Bernoulli: log p(x|z) is −(summed binary cross-entropy), as in training.
    /// Gaussian: the log-density of the raw (unstandardized) row, Σ log N(x; mean, σ²), so values are comparable
    /// with the training loss and can be positive for continuous data.
    /// </para>
    /// <para>
    /// Unlike scoring, this is an evaluation of a whole data set: a row with a NaN or infinite value, or (Bernoulli) a
    /// value outside [0, 1], throws naming the row. Cost: <paramref name="samples"/> decoder passes per row.
    /// </para>
    /// </remarks>
    /// <param name="data">Rows with this model's feature column (<see cref="FeatureColumnName"/>, <see cref="InputSize"/> floats).</param>
    /// <param name="samples">Importance samples per row, k ≥ 1 (default 200).</param>
    /// <param name="seed">Seed of the samples; null draws one, so repeated calls differ by the estimate's noise.</param>
    /// <returns>Mean log p(x) per row, in nats (negative for Bernoulli data; NLL = −this).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="samples"/> is below 1, or the feature column is missing or of the wrong type.</exception>
    /// <exception cref="ArgumentException"><paramref name="data"/> has no rows, or a row is not finite (or outside [0, 1] for Bernoulli).</exception>
    public double LogLikelihood(IDataView data, int samples = 200, int? seed = null)
    {
        var perRow = LogLikelihoodPerRow(data, samples, seed);
        if (perRow.Length == 0)
        {
            throw new ArgumentException($"The data has no rows: the log-likelihood of an empty set is undefined.", nameof(data));
        }

        return perRow.Average();
    }

    /// <summary>
    /// The importance-weighted estimate of log p(x) (see <see cref="LogLikelihood"/>) of each row of
    /// <paramref name="data"/>, in nats, in row order.
    /// </summary>
    /// <param name="data">Rows with this model's feature column.</param>
    /// <param name="samples">Importance samples per row, k ≥ 1 (default 200).</param>
    /// <param name="seed">Seed of the samples; null draws one.</param>
    /// <returns>One estimate per row (empty for no rows).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="samples"/> is below 1, or the feature column is missing or of the wrong type.</exception>
    /// <exception cref="ArgumentException">A row is not finite (or outside [0, 1] for Bernoulli).</exception>
    public double[] LogLikelihoodPerRow(IDataView data, int samples = 200, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 1);
        var width = FeatureColumn.GetVectorSize(data.Schema, FeatureColumnName, nameof(data));
        if (width != InputSize)
        {
            throw new ArgumentOutOfRangeException(nameof(data), FeatureColumnName,
                $"Column '{FeatureColumnName}' has {width} values per row; this model was trained on {InputSize}.");
        }

        using var generator = new TorchSharp.torch.Generator((ulong)(seed ?? Random.Shared.Next()), TorchSharp.torch.CPU);
        var result = new List<double>();
        var batch = new float[LogLikelihoodRowsPerBatch * width];
        int rows = 0;
        foreach (var row in FeatureColumn.ReadRows(data, FeatureColumnName, width, "LogLikelihood data", static () => { }, likelihood: Likelihood))
        {
            row.CopyTo(batch, rows * width);
            if (++rows == LogLikelihoodRowsPerBatch)
            {
                result.AddRange(VaeImportanceWeighting.LogLikelihood(_model, batch, rows, samples, generator));
                rows = 0;
            }
        }

        if (rows > 0)
        {
            result.AddRange(VaeImportanceWeighting.LogLikelihood(_model, batch.AsSpan(0, rows * width), rows, samples, generator));
        }

        return [.. result];
    }
}
