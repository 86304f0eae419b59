using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Vae.ML.Samples.Bench;

/// <summary>Where one training step's time goes, in milliseconds per step (medians over the measured steps).</summary>
/// <param name="Data">Index tensor from the epoch's permutation and the <c>index_select</c> gather of the batch.</param>
/// <param name="Forward">Forward pass and loss (network, reparameterisation, BCE-with-logits, KL).</param>
/// <param name="ForwardGemms">The forward GEMMs alone (fc1, fc4) at the same shapes.</param>
/// <param name="Backward">Autograd backward pass.</param>
/// <param name="BackwardGemms">The backward GEMMs alone (weight gradients of fc1 and fc4, input gradient of fc4).</param>
/// <param name="Optimizer"><c>zero_grad</c> and the Adam step over all parameters.</param>
/// <param name="Reads">The BCE and KL scalars read back to .NET (<c>item</c>) after the step.</param>
/// <param name="Release">Disposing the step's tensors (the dispose scope).</param>
/// <param name="FixedCostPerStep">A whole step at batch 1: what a step costs beyond the arithmetic, i.e. libtorch's
/// dispatch and the .NET↔native calls.</param>
/// <param name="Steps">Steps measured.</param>
/// <param name="Checks">The library's divergence guard before the update: the loss read back (<c>item</c>) and checked,
/// and every gradient's largest magnitude reduced to one scalar and read back. Zero in reports written before it was
/// measured.</param>
internal sealed record StepProfile(double Data, double Forward, double ForwardGemms, double Backward, double BackwardGemms,
    double Optimizer, double Reads, double Release, double FixedCostPerStep, int Steps, double Checks = 0)
{
    /// <summary>Sum of the measured phases.</summary>
    public double Total => Data + Forward + Backward + Checks + Optimizer + Reads + Release;
}

/// <summary>
/// Bare TorchSharp references measured in the bench's own process, with the same threads: the GEMM floor of a
/// training step, the encoder's FP32 throughput limit, single-row encoder latency, and a per-phase profile of a
/// training step written like the library's loop (the library's own loop is internal and stays unchanged).
/// Call only after Vae.ML has initialised TorchSharp (the bench trains first).
/// </summary>
internal static class TorchReference
{
    /// <summary>
    /// The time of one training step's matrix products alone at <paramref name="batch"/> rows (seconds, median of
    /// <paramref name="repeats"/>): forward x·W1ᵀ and h3·W4ᵀ; backward gW4 = gᵀ·h3, g·W4 (input gradient of fc4) and
    /// gW1 = ghᵀ·x (fc1's input needs no gradient). The small layers (400×2, 2×400) are left out: they are not GEMM-bound.
    /// </summary>
    public static double StepGemmSeconds(int batch, int width, int hidden, int repeats)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = rand(batch, width);
        var w1 = randn(hidden, width);
        var w4 = randn(width, hidden);
        var h = rand(batch, hidden);
        var g = randn(batch, width);
        var gh = randn(batch, hidden);
        var times = new double[repeats];
        for (int r = -2; r < repeats; r++)
        {
            using var step = NewDisposeScope();
            long start = Stopwatch.GetTimestamp();
            ForwardGemms(x, w1, h, w4);
            BackwardGemms(x, gh, h, g, w4);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (r >= 0)
            {
                times[r] = seconds;
            }
        }

        return Spread.Of(times).Median;
    }

    /// <summary>The GEMM floor of one epoch: full batches and the last partial one, each at its own measured cost.</summary>
    public static double EpochGemmFloorSeconds(int rows, int batch, int width, int hidden, int repeats)
    {
        int full = rows / batch, rest = rows % batch;
        double seconds = full * StepGemmSeconds(batch, width, hidden, repeats);
        return rest == 0 ? seconds : seconds + StepGemmSeconds(rest, width, hidden, repeats);
    }

    private static void ForwardGemms(Tensor x, Tensor w1, Tensor h, Tensor w4)
    {
        x.mm(w1.t());
        h.mm(w4.t());
    }

    private static void BackwardGemms(Tensor x, Tensor gh, Tensor h, Tensor g, Tensor w4)
    {
        g.t().mm(h);
        g.mm(w4);
        gh.t().mm(x);
    }

    /// <summary>
    /// The encoder's throughput limit in rows per second: fc1 → ReLU → fc21, fc22 on resident batches of
    /// <paramref name="batch"/> rows, nothing else (no data copy, no .NET rows). Median of <paramref name="repeats"/>.
    /// </summary>
    public static double EncoderRowsPerSecond(int batch, int width, int hidden, int latent, int repeats)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (fc1, fc21, fc22) = (nn.Linear(width, hidden), nn.Linear(hidden, latent), nn.Linear(hidden, latent));
        var x = rand(batch, width);
        var rates = new double[repeats];
        for (int r = -2; r < repeats; r++)
        {
            using var step = NewDisposeScope();
            long start = Stopwatch.GetTimestamp();
            var hiddenActivations = F.relu(fc1.forward(x));
            fc21.forward(hiddenActivations);
            fc22.forward(hiddenActivations);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (r >= 0)
            {
                rates[r] = batch / seconds;
            }
        }

        fc1.Dispose();
        fc21.Dispose();
        fc22.Dispose();
        return Spread.Of(rates).Median;
    }

    /// <summary>
    /// A bare single-row encoder call as a user of TorchSharp would write it: a .NET float[] in, a tensor from it,
    /// fc1 → ReLU → fc21, μ read back into a float[]. The floor for a prediction engine's one-row latency.
    /// </summary>
    public sealed class SingleRowEncoder : IDisposable
    {
        private readonly Linear _fc1, _fc21;
        private readonly long[] _shape;

        /// <summary>A randomly initialised encoder of the given shape.</summary>
        public SingleRowEncoder(int width, int hidden, int latent)
        {
            _fc1 = nn.Linear(width, hidden);
            _fc21 = nn.Linear(hidden, latent);
            _shape = [1, width];
        }

        /// <summary>μ of one row.</summary>
        public float[] Encode(float[] row)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var x = tensor(row, _shape);
            return _fc21.forward(F.relu(_fc1.forward(x))).data<float>().ToArray();
        }

        /// <inheritdoc />
        public void Dispose()
        {
            _fc1.Dispose();
            _fc21.Dispose();
        }
    }

    /// <summary>
    /// Times the phases of <paramref name="steps"/> training steps written like Vae.ML's loop (resident data,
    /// <c>index_select</c> batches of a permutation, forward with ε from a generator, BCE-with-logits + KL, backward,
    /// the finite loss and gradient check, Adam, the BCE and KL reads, a dispose scope per step). On the CPU every libtorch call returns when its work
    /// is done, so a clock read between calls is a synchronising measurement.
    /// </summary>
    public static StepProfile ProfileSteps(float[] images, int width, int hidden, int latent, int batch, int steps, int seed)
    {
        int rows = images.Length / width;
        using var outer = NewDisposeScope();
        using var generator = new Generator((ulong)seed);
        var data = tensor(images, [rows, width]);
        var fc1 = nn.Linear(width, hidden);
        var fc21 = nn.Linear(hidden, latent);
        var fc22 = nn.Linear(hidden, latent);
        var fc3 = nn.Linear(latent, hidden);
        var fc4 = nn.Linear(hidden, width);
        Linear[] layers = [fc1, fc21, fc22, fc3, fc4];
        var parameters = layers.SelectMany(l => l.parameters()).ToList();
        using var optimizer = optim.Adam(parameters, 1e-3);
        long[] order = randperm(rows, generator: generator).data<long>().ToArray();

        var phases = new List<double>[7];
        for (int i = 0; i < phases.Length; i++)
        {
            phases[i] = [];
        }

        int cursor = 0;
        for (int s = -3; s < steps; s++)
        {
            int count = Math.Min(batch, rows);
            if (cursor + count > order.Length)
            {
                cursor = 0;
            }

            long t0 = Stopwatch.GetTimestamp();
            var scope = NewDisposeScope();
            var index = tensor(order.AsSpan(cursor, count).ToArray());
            var x = data.index_select(0, index);
            cursor += count;
            long t1 = Stopwatch.GetTimestamp();
            optimizer.zero_grad();
            long t1b = Stopwatch.GetTimestamp();
            var h = F.relu(fc1.forward(x));
            var (mu, logVar) = (fc21.forward(h), fc22.forward(h));
            var eps = randn(mu.shape, generator: generator);
            var z = mu + eps * exp(0.5 * logVar);
            var logits = fc4.forward(F.relu(fc3.forward(z)));
            var bce = F.binary_cross_entropy_with_logits(logits, x, reduction: nn.Reduction.Sum);
            var kl = -0.5 * sum(1 + logVar - mu.pow(2) - logVar.exp());
            var loss = bce + kl;
            long t2 = Stopwatch.GetTimestamp();
            loss.backward();
            long t3 = Stopwatch.GetTimestamp();
            bool finite = float.IsFinite(loss.item<float>())
                && float.IsFinite(stack(parameters.Select(p => linalg.vector_norm(p.grad!, double.PositiveInfinity)).ToList()).max().item<float>());
            long t3b = Stopwatch.GetTimestamp();
            if (!finite)
            {
                throw new InvalidOperationException("The profiled training step diverged; the profile would time a broken step.");
            }

            optimizer.step();
            long t4 = Stopwatch.GetTimestamp();
            _ = bce.item<float>() + kl.item<float>();
            long t5 = Stopwatch.GetTimestamp();
            scope.Dispose();
            long t6 = Stopwatch.GetTimestamp();
            if (s >= 0)
            {
                phases[0].Add(Ms(t0, t1));
                phases[1].Add(Ms(t1b, t2));
                phases[2].Add(Ms(t2, t3));
                phases[6].Add(Ms(t3, t3b));
                phases[3].Add(Ms(t3b, t4) + Ms(t1, t1b));
                phases[4].Add(Ms(t4, t5));
                phases[5].Add(Ms(t5, t6));
            }
        }

        foreach (var layer in layers)
        {
            layer.Dispose();
        }

        double forwardGemms, backwardGemms;
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var (x, w1, w4, h, g, gh) = (rand(batch, width), randn(hidden, width), randn(width, hidden), rand(batch, hidden), randn(batch, width), randn(batch, hidden));
            var forward = new List<double>();
            var backward = new List<double>();
            for (int s = -2; s < steps; s++)
            {
                using var step = NewDisposeScope();
                long t0 = Stopwatch.GetTimestamp();
                ForwardGemms(x, w1, h, w4);
                long t1 = Stopwatch.GetTimestamp();
                BackwardGemms(x, gh, h, g, w4);
                long t2 = Stopwatch.GetTimestamp();
                if (s >= 0)
                {
                    forward.Add(Ms(t0, t1));
                    backward.Add(Ms(t1, t2));
                }
            }

            (forwardGemms, backwardGemms) = (Spread.Of(forward).Median, Spread.Of(backward).Median);
        }

        double fixedCost = batch == 1 ? 0 : StepTotalMilliseconds(images, width, hidden, latent, seed, steps);
        double Median(int i) => Spread.Of(phases[i]).Median;
        return new StepProfile(Median(0), Median(1), forwardGemms, Median(2), backwardGemms, Median(3), Median(4), Median(5),
            fixedCost, steps, Median(6));
    }

    private static double StepTotalMilliseconds(float[] images, int width, int hidden, int latent, int seed, int steps) =>
        ProfileSteps(images, width, hidden, latent, 1, steps, seed).Total;

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;
}
