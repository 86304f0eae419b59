using System.Diagnostics;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using Tensor = TorchSharp.torch.Tensor;

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
/// <param name="Workers">Threads of the managed passes (fixed ranges, as the library's step cuts them); 1 in reports
/// written before they were split.</param>
internal sealed record StepProfile(double Data, double Forward, double ForwardGemms, double Backward, double BackwardGemms,
    double Optimizer, double Reads, double Release, double FixedCostPerStep, int Steps, double Checks = 0, int Workers = 1, int TrainedSteps = 0)
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
    /// Times the phases of <paramref name="steps"/> training steps written like Vae.ML's CPU loop for the MLP (the
    /// library's step is internal, so this is a copy with the same calls): resident data and <c>index_select</c>
    /// batches of a permutation; no autograd: the GEMMs as libtorch <c>addmm_</c> into preallocated matrices and the
    /// parameters' and gradients' memory as views of flat buffers; bias, ReLU, ε (drawn with <c>normal_</c> from a
    /// generator), reparameterisation, BCE-with-logits with its gradient, KL, ReLU masks and bias sums in managed code;
    /// Adam as one managed pass over the flat buffers; the managed passes cut into at most <paramref name="workers"/>
    /// fixed ranges as the library's <c>StepPartition</c> cuts them. On the CPU every libtorch call returns when its work
    /// is done, so a clock read between calls is a synchronising measurement.
    /// </summary>
    /// <remarks>
    /// <paramref name="trainedSteps"/> untimed training steps come first, so the phases are timed in the state an epoch
    /// mostly runs in, not at the initial weights: data-dependent costs (dead ReLU units' zero gradients, Adam moments
    /// that decay toward the subnormal floats) only appear after some training.
    /// </remarks>
    public static StepProfile ProfileSteps(float[] images, int width, int hidden, int latent, int batch, int steps, int seed, int workers = 1, int trainedSteps = 0)
    {
        int rows = images.Length / width;
        using var outer = NewDisposeScope();
        using var generator = new Generator((ulong)seed);
        var data = tensor(images, [rows, width]);
        var net = new ProfiledMlp(width, hidden, latent, Math.Min(batch, rows), new Ranges(workers));
        var permutation = randperm(rows, generator: generator);

        var phases = new List<double>[8];
        for (int i = 0; i < phases.Length; i++)
        {
            phases[i] = [];
        }

        var pending = new List<(double Loss, float Largest)>(32);
        long cursor = 0;
        for (int s = -3 - trainedSteps; s < steps; s++)
        {
            int count = Math.Min(batch, rows);
            if (cursor + count > rows)
            {
                cursor = 0;
            }

            long t0 = Stopwatch.GetTimestamp();
            var scope = NewDisposeScope();
            var x = data.index_select(0, permutation.narrow(0, cursor, count));
            cursor += count;
            long t1 = Stopwatch.GetTimestamp();
            var (forwardGemms, backwardGemms) = net.Step(x, generator, out long forwardEnd);
            long t2 = Stopwatch.GetTimestamp();
            float largest = net.Adam();
            long t3 = Stopwatch.GetTimestamp();

            // The divergence guard: the step's values kept, all pending ones checked every 32 steps.
            pending.Add((net.Loss, largest));
            if (pending.Count == 32)
            {
                if (pending.Any(p => !double.IsFinite(p.Loss) || !float.IsFinite(p.Largest)))
                {
                    throw new InvalidOperationException("The profiled training step diverged; the profile would time a broken step.");
                }

                pending.Clear();
            }

            long t3b = Stopwatch.GetTimestamp();
            scope.Dispose();
            long t4 = Stopwatch.GetTimestamp();
            if (s >= 0)
            {
                phases[0].Add(Ms(t0, t1));
                phases[1].Add(Ms(t1, forwardEnd));
                phases[2].Add(forwardGemms);
                phases[3].Add(Ms(forwardEnd, t2));
                phases[4].Add(backwardGemms);
                phases[5].Add(Ms(t2, t3));
                phases[6].Add(Ms(t3b, t4));
                phases[7].Add(Ms(t3, t3b));
            }
        }

        double fixedCost = batch == 1 ? 0 : StepTotalMilliseconds(images, width, hidden, latent, seed, steps, workers);
        double Median(int i) => Spread.Of(phases[i]).Median;

        // Nothing is read back from libtorch per step: the loss is computed in managed code.
        return new StepProfile(Median(0), Median(1), Median(2), Median(3), Median(4), Median(5), Reads: 0, Median(6), fixedCost, steps, Median(7), workers, trainedSteps);
    }

    private static double StepTotalMilliseconds(float[] images, int width, int hidden, int latent, int seed, int steps, int workers) =>
        ProfileSteps(images, width, hidden, latent, 1, steps, seed, workers).Total;

    /// <summary>
    /// A copy of the library's <c>StepPartition</c> (internal there): [0, count) cut into at most 4 contiguous ranges
    /// per worker, of at least 16,384 units of work each, run by <c>Parallel.For</c> on <c>workers</c> threads;
    /// body(part, start, end).
    /// </summary>
    private sealed class Ranges(int workers)
    {
        private const int MinimumWork = 16_384;
        private readonly ParallelOptions _options = new() { MaxDegreeOfParallelism = workers };

        public int MaxParts => workers == 1 ? 1 : workers * 4;

        public int Parts(int count, int costPerItem, int alignment = 1) =>
            (int)Math.Max(1, Math.Min(MaxParts, Math.Min((long)count * costPerItem / MinimumWork, count / alignment)));

        public void For(int count, int costPerItem, Action<int, int, int> body, int alignment = 1)
        {
            int parts = Parts(count, costPerItem, alignment);
            if (parts == 1)
            {
                body(0, 0, count);
                return;
            }

            int Bound(int part) => part == parts ? count : (int)((long)count * part / parts / alignment * alignment);
            Parallel.For(0, parts, _options, part => body(part, Bound(part), Bound(part + 1)));
        }
    }

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;

    /// <summary>
    /// 784-400-2 (any sizes) as the library's CPU step computes it: flat parameter, gradient and moment buffers;
    /// activations preallocated for one batch size; no autograd; the managed passes cut by <see cref="Ranges"/> as the
    /// library cuts them (bias and ReLU and the BCE by rows, bias sums by columns, ReLU masks and Adam by elements).
    /// </summary>
    private sealed class ProfiledMlp
    {
        private readonly Tensor _values, _gradients, _expAvg, _expAvgSq;
        private readonly Layer _fc1, _fc21, _fc22, _fc3, _fc4;
        private readonly Tensor _h, _mu, _logVar, _eps, _z, _h3, _logits, _dLogits, _dH3, _dZ, _dMu, _dLogVar, _dH;
        private readonly float[] _scratch, _rowSums;
        private readonly Ranges _ranges;
        private long _step;

        public ProfiledMlp(int width, int hidden, int latent, int batch, Ranges ranges)
        {
            _ranges = ranges;
            var shapes = new (int Out, int In)[] { (hidden, width), (latent, hidden), (latent, hidden), (hidden, latent), (width, hidden) };
            long total = shapes.Sum(s => ((long)s.Out * s.In) + s.Out);
            (_values, _gradients, _expAvg, _expAvgSq) = (zeros(total), zeros(total), zeros(total), zeros(total));
            long offset = 0;
            var layers = shapes.Select(s =>
            {
                var layer = new Layer(_values, _gradients, offset, s.Out, s.In, ranges);
                offset += ((long)s.Out * s.In) + s.Out;
                return layer;
            }).ToArray();
            (_fc1, _fc21, _fc22, _fc3, _fc4) = (layers[0], layers[1], layers[2], layers[3], layers[4]);
            (_h, _h3, _dH3, _dH) = (zeros(batch, hidden), zeros(batch, hidden), zeros(batch, hidden), zeros(batch, hidden));
            (_mu, _logVar, _eps, _z, _dZ, _dMu, _dLogVar) = (zeros(batch, latent), zeros(batch, latent), zeros(batch, latent), zeros(batch, latent),
                zeros(batch, latent), zeros(batch, latent), zeros(batch, latent));
            (_logits, _dLogits) = (zeros(batch, width), zeros(batch, width));
            _scratch = new float[ranges.MaxParts * width];
            _rowSums = new float[batch];
        }

        /// <summary>The last step's summed loss (BCE + KL).</summary>
        public double Loss { get; private set; }

        /// <summary>Forward, loss and gradients of one batch; returns the time spent in GEMMs (ms), forward and backward.</summary>
        public (double Forward, double Backward) Step(Tensor x, Generator generator, out long forwardEnd)
        {
            double forwardGemms = 0, backwardGemms = 0;
            Loss = 0;
            forwardGemms += _fc1.Forward(x, _h, relu: true);
            forwardGemms += _fc21.Forward(_h, _mu, relu: false);
            forwardGemms += _fc22.Forward(_h, _logVar, relu: false);
            _eps.normal_(0, 1, generator);
            Span<float> mu = F32(_mu), logVar = F32(_logVar), eps = F32(_eps), z = F32(_z);
            for (int i = 0; i < z.Length; i++)
            {
                z[i] = mu[i] + (eps[i] * MathF.Exp(0.5f * logVar[i]));
            }

            forwardGemms += _fc3.Forward(_z, _h3, relu: true);
            forwardGemms += _fc4.Forward(_h3, _logits, relu: false);
            int width = (int)_logits.shape[1], rows = (int)_logits.shape[0];
            Tensor logitsTensor = _logits, gradientTensor = _dLogits;
            _ranges.For(rows, width * 24, (part, first, end) =>
            {
                Span<float> logits = F32(logitsTensor), dLogits = F32(gradientTensor), t = _scratch.AsSpan(part * width, width);
                ReadOnlySpan<float> xs = F32(x);
                for (int r = first; r < end; r++)
                {
                    Span<float> l = logits.Slice(r * width, width), g = dLogits.Slice(r * width, width);
                    ReadOnlySpan<float> xr = xs.Slice(r * width, width);
                    TensorPrimitives.Sigmoid(l, g);
                    TensorPrimitives.Subtract(1f, g, t);
                    TensorPrimitives.Max(g, t, t);
                    TensorPrimitives.Log(t, t);
                    _rowSums[r] = (0.5f * (TensorPrimitives.Sum(l) + TensorPrimitives.SumOfMagnitudes(l))) - TensorPrimitives.Sum(t) - TensorPrimitives.Dot(l, xr);
                    TensorPrimitives.Subtract(g, xr, g);
                }
            });

            for (int r = 0; r < rows; r++)
            {
                Loss += _rowSums[r];
            }

            for (int i = 0; i < mu.Length; i++)
            {
                Loss += -0.5 * (1 + logVar[i] - (mu[i] * mu[i]) - Math.Exp(logVar[i]));
            }

            forwardEnd = Stopwatch.GetTimestamp();
            backwardGemms += _fc4.Backward(_dLogits, _h3, _dH3);
            backwardGemms += _fc3.Backward(_dH3, _z, _dZ, reluOutput: _h3);
            Span<float> dZ = F32(_dZ), dMu = F32(_dMu), dLogVar = F32(_dLogVar);
            for (int i = 0; i < dZ.Length; i++)
            {
                double sigma = Math.Exp(0.5 * logVar[i]);
                dMu[i] = (float)(dZ[i] + mu[i]);
                dLogVar[i] = (float)((dZ[i] * 0.5 * eps[i] * sigma) + (0.5 * ((sigma * sigma) - 1)));
            }

            backwardGemms += _fc21.Backward(_dMu, _h, _dH);
            backwardGemms += _fc22.Backward(_dLogVar, _h, _dH, accumulate: true);
            backwardGemms += _fc1.Backward(_dH, x, null, reluOutput: _h);
            return (forwardGemms, backwardGemms);
        }

        /// <summary>One Adam step (lr 1e-3) in one managed pass cut into fixed ranges; returns the largest |gradient|.</summary>
        public float Adam()
        {
            _step++;
            float stepSize = (float)(-1e-3 / (1 - Math.Pow(0.9, _step))), root = (float)Math.Sqrt(1 - Math.Pow(0.999, _step));
            int count = (int)_values.numel(), width = Vector<float>.Count;
            var largest = new float[_ranges.Parts(count, 16, width)];
            _ranges.For(count, 16, (part, start, end) => largest[part] = AdamPass.Range(F32(_values), F32(_gradients), F32(_expAvg), F32(_expAvgSq), start, end, stepSize, root), width);
            return largest.Max();
        }

        private static Span<float> F32(Tensor t) => MemoryMarshal.Cast<byte, float>(t.bytes);

        /// <summary>g ← g where the ReLU's output is positive, else 0 (vectorised, as the library's).</summary>
        private static void ReluBackward(Span<float> gradient, ReadOnlySpan<float> activation)
        {
            int i = 0, width = Vector<float>.Count;
            for (; i <= gradient.Length - width; i += width)
            {
                var active = Vector.GreaterThan(new Vector<float>(activation.Slice(i, width)), Vector<float>.Zero);
                Vector.ConditionalSelect(active, new Vector<float>(gradient.Slice(i, width)), Vector<float>.Zero).CopyTo(gradient.Slice(i, width));
            }

            for (; i < gradient.Length; i++)
            {
                gradient[i] = activation[i] > 0 ? gradient[i] : 0;
            }
        }

        /// <summary>A dense layer whose weight, bias and their gradients are views of the flat buffers.</summary>
        private sealed class Layer
        {
            private readonly Tensor _weight, _weightT, _bias, _weightGrad, _biasGrad;
            private readonly Ranges _ranges;

            public Layer(Tensor values, Tensor gradients, long offset, int outputs, int inputs, Ranges ranges)
            {
                _ranges = ranges;
                long count = (long)outputs * inputs;
                _weight = values.narrow(0, offset, count).view(outputs, inputs);
                _weightT = _weight.t();
                _bias = values.narrow(0, offset + count, outputs);
                _weightGrad = gradients.narrow(0, offset, count).view(outputs, inputs);
                _biasGrad = gradients.narrow(0, offset + count, outputs);
                using var noGrad = no_grad();
                double bound = 1 / Math.Sqrt(inputs);
                _weight.uniform_(-bound, bound);
                _bias.uniform_(-bound, bound);
            }

            /// <summary>y = x·Wᵀ + b (ReLU'd); returns the GEMM's milliseconds.</summary>
            public double Forward(Tensor x, Tensor y, bool relu)
            {
                long start = Stopwatch.GetTimestamp();
                y.addmm_(x, _weightT, beta: 0, alpha: 1);
                double gemm = Ms(start, Stopwatch.GetTimestamp());
                int width = (int)_bias.numel();
                _ranges.For((int)(y.numel() / width), width, (_, first, end) =>
                {
                    Span<float> values = F32(y), bias = F32(_bias);
                    for (int r = first; r < end; r++)
                    {
                        var row = values.Slice(r * width, width);
                        TensorPrimitives.Add(row, bias, row);
                        if (relu)
                        {
                            TensorPrimitives.Max(row, 0f, row);
                        }
                    }
                });

                return gemm;
            }

            /// <summary>
            /// g masked by the ReLU's output (when given) and ∂b = Σ_rows g in one pass by columns, then ∂W = gᵀ·x and
            /// ∂x = g·W (added when accumulating); returns the GEMMs' milliseconds.
            /// </summary>
            public double Backward(Tensor g, Tensor x, Tensor? dx, bool accumulate = false, Tensor? reluOutput = null)
            {
                int width = (int)_biasGrad.numel(), rows = (int)(g.numel() / width);
                _ranges.For(width, rows * (reluOutput is null ? 1 : 2), (_, first, end) =>
                {
                    Span<float> values = F32(g), biasGrad = F32(_biasGrad)[first..end];
                    ReadOnlySpan<float> activations = reluOutput is null ? default : F32(reluOutput);
                    for (int r = 0; r < rows; r++)
                    {
                        var row = values.Slice((r * width) + first, end - first);
                        if (reluOutput is not null)
                        {
                            ReluBackward(row, activations.Slice((r * width) + first, end - first));
                        }

                        if (r == 0)
                        {
                            row.CopyTo(biasGrad);
                        }
                        else
                        {
                            TensorPrimitives.Add(biasGrad, row, biasGrad);
                        }
                    }
                });

                long start = Stopwatch.GetTimestamp();
                _weightGrad.addmm_(g.t(), x, beta: 0, alpha: 1);
                dx?.addmm_(g, _weight, beta: accumulate ? 1 : 0, alpha: 1);
                return Ms(start, Stopwatch.GetTimestamp());
            }
        }
    }
}
