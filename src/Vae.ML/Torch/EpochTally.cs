using System.Globalization;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>
/// An epoch's running sums and its divergence guard, fed once per step without a host sync: each step's loss,
/// reconstruction term, KL and largest |gradient| stay on the device as one 4-value tensor until <see cref="Check"/>
/// reads all pending steps at once, in step order. The sums are therefore exactly those of reading every step.
/// </summary>
internal sealed class EpochTally(int epoch, double learningRate) : IDisposable
{
    /// <summary>Steps between reads: a diverged run wastes at most this many steps before it stops.</summary>
    public const int CheckEvery = 32;

    private readonly List<(Tensor Values, long Rows)> _pending = new(CheckEvery);
    private int _checkedBatches;

    /// <summary>Steps recorded but not yet read.</summary>
    public int Pending => _pending.Count;

    /// <summary>Sum of the checked steps' losses.</summary>
    public double Total { get; private set; }

    /// <summary>Sum of the checked steps' reconstruction terms.</summary>
    public double Reconstruction { get; private set; }

    /// <summary>Sum of the checked steps' KL terms.</summary>
    public double Kl { get; private set; }

    /// <summary>Rows of the checked steps.</summary>
    public long Rows { get; private set; }

    /// <summary>Keeps one step's scalars on the device (created outside the step's dispose scope; no host sync).</summary>
    public void Record(Tensor loss, Tensor reconstruction, Tensor kl, Tensor largestGradient, long rows)
    {
        using var noGrad = no_grad();
        var values = stack([loss, reconstruction, kl, largestGradient]).DetachFromDisposeScope();
        _pending.Add((values, rows));
    }

    /// <summary>
    /// Reads the pending steps (one host sync) and adds them to the sums; throws at the first step whose loss or
    /// gradient is NaN or infinite, naming its epoch and batch.
    /// </summary>
    /// <exception cref="VaeTrainingDivergedException">A pending step's loss or gradient is not finite.</exception>
    public void Check()
    {
        if (_pending.Count == 0)
        {
            return;
        }

        float[] values;
        using (var stacked = stack(_pending.Select(p => p.Values)))
        using (var host = stacked.cpu())
        {
            values = host.data<float>().ToArray();
        }

        var rows = _pending.Select(p => p.Rows).ToArray();
        DisposePending();
        for (var i = 0; i < rows.Length; i++)
        {
            var batch = _checkedBatches + i + 1;
            var loss = values[4 * i];
            if (!float.IsFinite(loss))
            {
                throw new VaeTrainingDivergedException(epoch, batch, learningRate, $"the loss is {loss}");
            }

            if (!float.IsFinite(values[(4 * i) + 3]))
            {
                throw new VaeTrainingDivergedException(epoch, batch, learningRate,
                    string.Create(CultureInfo.InvariantCulture, $"a gradient is NaN or infinite (the loss is {loss})"));
            }

            Total += loss;
            Reconstruction += values[(4 * i) + 1];
            Kl += values[(4 * i) + 2];
            Rows += rows[i];
        }

        _checkedBatches += rows.Length;
    }

    public void Dispose() => DisposePending();

    private void DisposePending()
    {
        foreach (var (values, _) in _pending)
        {
            values.Dispose();
        }

        _pending.Clear();
    }
}
