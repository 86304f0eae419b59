using System.Globalization;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>
/// An epoch's running sums and its divergence guard, fed once per step without a host sync: each step's loss,
/// reconstruction term, KL and largest |gradient| stay on the device as one 4-value tensor until <see cref="Check"/>
/// reads all pending steps at once, in step order. The sums are therefore exactly those of reading every step. A step
/// computed on the host (<see cref="CpuMlpStep"/>) records its values as they are; they wait for the same check.
/// </summary>
internal sealed class EpochTally(int epoch, double learningRate) : IDisposable
{
    /// <summary>Steps between reads: a diverged run wastes at most this many steps before it stops.</summary>
    public const int CheckEvery = 32;

    private readonly List<(Tensor? Values, double[]? HostValues, long Rows)> _pending = new(CheckEvery);
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
        _pending.Add((values, null, rows));
    }

    /// <summary>Keeps one step's values computed on the host.</summary>
    public void Record(double loss, double reconstruction, double kl, float largestGradient, long rows)
        => _pending.Add((null, [loss, reconstruction, kl, largestGradient], rows));

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

        // The device's steps in one read; the host's as they are.
        var onDevice = _pending.Where(p => p.Values is not null).Select(p => p.Values!).ToList();
        float[] read = [];
        if (onDevice.Count > 0)
        {
            using var stacked = stack(onDevice);
            using var host = stacked.cpu();
            read = host.data<float>().ToArray();
        }

        var deviceIndex = 0;
        var steps = _pending.Select(p => (Values: p.HostValues ?? read.AsSpan(4 * deviceIndex++, 4).ToArray().Select(v => (double)v).ToArray(), p.Rows)).ToList();
        DisposePending();
        for (var i = 0; i < steps.Count; i++)
        {
            var batch = _checkedBatches + i + 1;
            var (values, rows) = steps[i];
            var loss = values[0];
            var shown = (float)loss;
            if (!double.IsFinite(loss))
            {
                throw new VaeTrainingDivergedException(epoch, batch, learningRate, $"the loss is {shown}");
            }

            if (!double.IsFinite(values[3]))
            {
                throw new VaeTrainingDivergedException(epoch, batch, learningRate,
                    string.Create(CultureInfo.InvariantCulture, $"a gradient is NaN or infinite (the loss is {shown})"));
            }

            Total += loss;
            Reconstruction += values[1];
            Kl += values[2];
            Rows += rows;
        }

        _checkedBatches += steps.Count;
    }

    public void Dispose() => DisposePending();

    private void DisposePending()
    {
        foreach (var (values, _, _) in _pending)
        {
            values?.Dispose();
        }

        _pending.Clear();
    }
}
