using System.Numerics;
using System.Runtime.Intrinsics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>
/// Adam (PyTorch's <c>torch.optim.Adam</c>: β₁ 0.9, β₂ 0.999, ε 1e-8, no weight decay, the same arithmetic in the same
/// order; on the CPU moments below <see cref="TinyMoment"/> are stored as zero) over all of a network's parameters at once. The parameters and their gradients become views into one flat
/// tensor each (as PyTorch's fused/foreach optimizers and DDP's gradient buckets arrange them), so zeroing the
/// gradients, the update and the divergence check are a handful of whole-buffer operations per step instead of about
/// ten .NET→native calls per parameter. On the CPU the update is one managed pass over the four buffers' memory
/// (<see cref="HostStep"/>) instead of eight libtorch passes, cut into <see cref="StepPartition"/>'s fixed ranges: the
/// pass moves 28 bytes per parameter and is bound by memory bandwidth, which a second core adds to.
/// </summary>
internal sealed unsafe class FlatAdam : IDisposable
{
    private const double Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;

    /// <summary>
    /// Moments smaller than this (2⁻¹²⁵) are stored as zero. A parameter whose gradient stops (a ReLU unit that died)
    /// keeps a first moment that decays by β₁ each step into the subnormal floats and never leaves them (at 4·2⁻¹⁴⁹,
    /// β₁·m rounds back to m); every operation on a subnormal float takes a microcode assist on x86, and with a seventh
    /// of the moments there from the second epoch of the report on, the update ran 8–10× slower. Flushing them changes no
    /// parameter: such a moment moves its parameter by less than 2⁻¹²⁵ / ε · lr ≈ 3·10⁻³² (PyTorch's own
    /// <c>torch.set_flush_denormal(True)</c> has the same effect). 2⁻¹²⁵ rather than 2⁻¹²⁶ so that β₁·m and β₂·v of a
    /// stored moment are never subnormal either.
    /// </summary>
    internal const float TinyMoment = 2.3509887e-38f;

    // The update's weight per element for StepPartition: about 14 float operations (one a square root, one a division).
    private const int AdamCostPerElement = 16;

    private readonly Tensor _values;
    private readonly Tensor _gradients;
    private readonly Tensor _expAvg;
    private readonly Tensor _expAvgSq;
    private readonly Scalar _beta1 = Beta1, _oneMinusBeta1 = 1 - Beta1, _beta2 = Beta2, _oneMinusBeta2 = 1 - Beta2, _epsilon = Epsilon;
    private readonly List<Slice> _slices = [];
    private readonly double _learningRate;

    // The four buffers' memory on the CPU (null on other devices), for the managed update.
    private readonly float* _valuesMemory, _gradientsMemory, _expAvgMemory, _expAvgSqMemory;
    private readonly int _count;
    private readonly StepPartition _partition;

    // Each range's largest |g| of the last CPU update, combined after the ranges join.
    private readonly float[] _largestPerRange;

    /// <summary>
    /// Takes over <paramref name="parameters"/>: afterwards each one's values and gradient live in the flat buffers. On
    /// the CPU the update's pass is cut by <paramref name="partition"/> (default: one thread); the result is the same.
    /// </summary>
    public FlatAdam(IEnumerable<(string Name, Parameter Parameter)> parameters, double learningRate, StepPartition? partition = null)
    {
        _learningRate = learningRate;
        _partition = partition ?? StepPartition.Serial;
        _largestPerRange = new float[_partition.MaxParts];
        long total = 0;
        Device? device = null;
        foreach (var (name, parameter) in parameters)
        {
            if (parameter.dtype != ScalarType.Float32)
            {
                throw new InvalidOperationException($"Parameter '{name}' is {parameter.dtype}; the optimizer handles Float32 only.");
            }

            device ??= parameter.device;
            _slices.Add(new Slice(name, parameter, total, parameter.numel(), parameter.shape));
            total += parameter.numel();
        }

        device ??= torch.CPU;
        _values = torch.empty(total, ScalarType.Float32, device);
        _gradients = torch.zeros(total, ScalarType.Float32, device);
        _expAvg = torch.zeros(total, ScalarType.Float32, device);
        _expAvgSq = torch.zeros(total, ScalarType.Float32, device);
        if (device.type == DeviceType.CPU && total <= int.MaxValue)
        {
            _count = (int)total;
            _valuesMemory = StepMemory.Pointer(_values);
            _gradientsMemory = StepMemory.Pointer(_gradients);
            _expAvgMemory = StepMemory.Pointer(_expAvg);
            _expAvgSqMemory = StepMemory.Pointer(_expAvgSq);
        }

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var slice in _slices)
        {
            var values = _values.narrow(0, slice.Offset, slice.Count).view(slice.Shape);
            values.copy_(slice.Parameter);
            slice.Parameter.set_(values);

            // Backward accumulates in place into an existing gradient, so it writes straight into the flat buffer.
            slice.Parameter.grad = _gradients.narrow(0, slice.Offset, slice.Count).view(slice.Shape);
        }
    }

    /// <summary>Adam steps taken (PyTorch keeps one count per parameter; here they always agree).</summary>
    public long Steps { get; private set; }

    /// <summary>Sets every gradient to zero: one operation.</summary>
    public void ZeroGrad() => _gradients.zero_();

    /// <summary>The largest |gradient| over all parameters, as a scalar tensor on the device (NaN and ∞ propagate to it); no host sync.</summary>
    public Tensor LargestGradientMagnitude() => torch.linalg.vector_norm(_gradients, double.PositiveInfinity);

    /// <summary>
    /// The largest |gradient| that the last <see cref="Step"/> on the CPU met (NaN when any gradient was NaN); a
    /// by-product of its single pass, so the CPU step's divergence guard costs nothing extra.
    /// </summary>
    public float LastLargestGradient { get; private set; }

    /// <summary>One Adam update of every parameter, as <c>torch.optim.Adam.step()</c> (single-tensor form) computes it.</summary>
    public void Step()
    {
        Steps++;
        var biasCorrection1 = 1 - Math.Pow(Beta1, Steps);
        var biasCorrection2 = 1 - Math.Pow(Beta2, Steps);
        if (_valuesMemory is not null)
        {
            LastLargestGradient = HostStep((float)(-(_learningRate / biasCorrection1)), (float)Math.Sqrt(biasCorrection2));
            return;
        }

        using var noGrad = torch.no_grad();
        using Scalar sqrtBiasCorrection2 = Math.Sqrt(biasCorrection2), stepSize = -(_learningRate / biasCorrection1);
        _expAvg.mul_(_beta1).add_(_gradients, alpha: _oneMinusBeta1);
        _expAvgSq.mul_(_beta2).addcmul_(_gradients, _gradients, value: _oneMinusBeta2);
        using var root = _expAvgSq.sqrt();
        using var denominator = root.div(sqrtBiasCorrection2);
        denominator.add_(_epsilon);
        _values.addcdiv_(_expAvg, denominator, value: stepSize);
    }

    /// <summary>
    /// The update on the CPU in one pass, torch.optim.Adam's float arithmetic in its order, cut into
    /// <see cref="StepPartition"/>'s fixed ranges (aligned to 64-byte cache lines, 16 floats: whole 512-bit vectors per range
    /// and no line written by two; each element gets the same arithmetic in any loop anyway). Returns the largest |g| (NaN if any g is NaN): a
    /// maximum, exact in any grouping.
    /// </summary>
    private float HostStep(float stepSize, float sqrtBiasCorrection2)
    {
        var width = StepPartition.FloatsPerCacheLine;
        var largest = _largestPerRange.AsSpan(0, _partition.Parts(_count, AdamCostPerElement, width));
        _partition.For(_count, AdamCostPerElement, (part, start, end) => _largestPerRange[part] = HostStepRange(start, end, stepSize, sqrtBiasCorrection2), width);
        var result = 0f;
        foreach (var value in largest)
        {
            // Math.Max returns NaN when either argument is NaN.
            result = Math.Max(result, value);
        }

        return result;
    }

    /// <summary>
    /// Elements [<paramref name="start"/>, <paramref name="end"/>) of the update: m ← β₁m + (1 − β₁)g,
    /// v ← β₂v + (1 − β₂)g² (each stored as zero below <see cref="TinyMoment"/>), p ← p + stepSize·m / (√v / √(1 − β₂ᵗ) + ε)
    /// with stepSize = −lr / (1 − β₁ᵗ). Returns the
    /// range's largest |g| (NaN if any g is NaN). Each element's arithmetic is the same in the vector and the scalar
    /// loop (no fused multiply-add), so the result does not depend on where the vectors end.
    /// </summary>
    private float HostStepRange(int start, int end, float stepSize, float sqrtBiasCorrection2)
    {
        float beta1 = (float)Beta1, oneMinusBeta1 = (float)(1 - Beta1), beta2 = (float)Beta2, oneMinusBeta2 = (float)(1 - Beta2), epsilon = (float)Epsilon;
        var count = end - start;
        var values = new Span<float>(_valuesMemory + start, count);
        var gradients = new ReadOnlySpan<float>(_gradientsMemory + start, count);
        var expAvg = new Span<float>(_expAvgMemory + start, count);
        var expAvgSq = new Span<float>(_expAvgSqMemory + start, count);
        var i = 0;
        var largest = Vector<float>.Zero;
        // Vector.Max need not propagate NaN (on .NET 8 it is x86's maxps, which returns its second operand): track NaN
        // apart. The scalar tail needs no flag: Math.Max returns NaN when either argument is NaN.
        var notANumber = Vector<int>.Zero;
        var largest512 = 0f;
        var sawNaN512 = false;
        var width = Vector<float>.Count;
        if (Vector512.IsHardwareAccelerated && Vector<float>.Count < Vector512<float>.Count)
        {
            // Vector<float> stays 256 bits wide on AVX-512 machines unless the app opts in; the pass at 512 bits took
            // 0.39 instead of 0.50 ms per step (docs/performance.md, "The small layers in managed code"), the same bits.
            (largest512, sawNaN512) = HostStep512(values, gradients, expAvg, expAvgSq, ref i, stepSize, sqrtBiasCorrection2);
        }

        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= count - width; i += width)
            {
                var g = new Vector<float>(gradients.Slice(i, width));
                var m = FlushTiny((new Vector<float>(expAvg.Slice(i, width)) * beta1) + (g * oneMinusBeta1));
                var v = FlushTiny((new Vector<float>(expAvgSq.Slice(i, width)) * beta2) + (oneMinusBeta2 * g * g));
                var denominator = (Vector.SquareRoot(v) / sqrtBiasCorrection2) + new Vector<float>(epsilon);
                var p = new Vector<float>(values.Slice(i, width)) + (stepSize * (m / denominator));
                m.CopyTo(expAvg.Slice(i, width));
                v.CopyTo(expAvgSq.Slice(i, width));
                p.CopyTo(values.Slice(i, width));
                largest = Vector.Max(largest, Vector.Abs(g));
                notANumber |= Vector.OnesComplement(Vector.Equals(g, g));
            }
        }

        var largestScalar = largest512;
        var sawNaN = sawNaN512 || notANumber != Vector<int>.Zero;
        for (var lane = 0; lane < width; lane++)
        {
            largestScalar = Math.Max(largestScalar, largest[lane]);
        }

        for (; i < count; i++)
        {
            var g = gradients[i];
            var m = FlushTiny((expAvg[i] * beta1) + (g * oneMinusBeta1));
            var v = FlushTiny((expAvgSq[i] * beta2) + (oneMinusBeta2 * g * g));
            var denominator = (MathF.Sqrt(v) / sqrtBiasCorrection2) + epsilon;
            values[i] += stepSize * (m / denominator);
            expAvg[i] = m;
            expAvgSq[i] = v;
            largestScalar = Math.Max(largestScalar, Math.Abs(g));
        }

        return sawNaN ? float.NaN : largestScalar;
    }

    /// <summary>
    /// The whole 512-bit vectors of a range from <paramref name="i"/> on (left after the last), with the arithmetic of
    /// <see cref="HostStepRange"/>'s loops element by element. Returns their largest |g| and whether one was NaN.
    /// </summary>
    private static (float Largest, bool SawNaN) HostStep512(Span<float> values, ReadOnlySpan<float> gradients, Span<float> expAvg, Span<float> expAvgSq,
        ref int i, float stepSize, float sqrtBiasCorrection2)
    {
        float beta1 = (float)Beta1, oneMinusBeta1 = (float)(1 - Beta1), beta2 = (float)Beta2, oneMinusBeta2 = (float)(1 - Beta2);
        var epsilon = Vector512.Create((float)Epsilon);
        var tiny = Vector512.Create(TinyMoment);
        var width = Vector512<float>.Count;
        var largest = Vector512<float>.Zero;
        var notANumber = Vector512<float>.Zero;
        for (; i <= values.Length - width; i += width)
        {
            var g = Vector512.Create(gradients.Slice(i, width));
            var m = (Vector512.Create((ReadOnlySpan<float>)expAvg.Slice(i, width)) * beta1) + (g * oneMinusBeta1);
            var v = (Vector512.Create((ReadOnlySpan<float>)expAvgSq.Slice(i, width)) * beta2) + (oneMinusBeta2 * g * g);
            m = Vector512.ConditionalSelect(Vector512.LessThan(Vector512.Abs(m), tiny), Vector512<float>.Zero, m);
            v = Vector512.ConditionalSelect(Vector512.LessThan(Vector512.Abs(v), tiny), Vector512<float>.Zero, v);
            var denominator = (Vector512.Sqrt(v) / sqrtBiasCorrection2) + epsilon;
            var p = Vector512.Create((ReadOnlySpan<float>)values.Slice(i, width)) + (stepSize * (m / denominator));
            m.CopyTo(expAvg.Slice(i, width));
            v.CopyTo(expAvgSq.Slice(i, width));
            p.CopyTo(values.Slice(i, width));
            largest = Vector512.Max(largest, Vector512.Abs(g));
            notANumber |= ~Vector512.Equals(g, g);
        }

        var result = 0f;
        for (var lane = 0; lane < width; lane++)
        {
            result = Math.Max(result, largest[lane]);
        }

        return (result, notANumber != Vector512<float>.Zero);
    }

    /// <summary>Zero where |x| &lt; <see cref="TinyMoment"/>; NaN stays NaN.</summary>
    private static Vector<float> FlushTiny(Vector<float> x)
        => Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(x), new Vector<float>(TinyMoment)), Vector<float>.Zero, x);

    /// <summary>Zero where |x| &lt; <see cref="TinyMoment"/>; NaN stays NaN.</summary>
    private static float FlushTiny(float x) => MathF.Abs(x) < TinyMoment ? 0f : x;

    /// <summary>Adam's state per parameter, in the order the parameters were given.</summary>
    public IReadOnlyList<AdamParameterState> GetState()
        => _slices.Select(s => new AdamParameterState(s.Name, Steps, ToArray(_expAvg, s), ToArray(_expAvgSq, s))).ToList();

    /// <summary>Puts back a state from <see cref="GetState"/> (matched by name; every parameter must be present, all with one step count).</summary>
    public void SetState(IReadOnlyList<AdamParameterState> state)
    {
        var byName = state.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var steps = state.Select(s => s.Step).Distinct().ToList();
        if (steps.Count != 1)
        {
            throw new InvalidDataException($"the optimizer state has different step counts per parameter ({string.Join(", ", steps)}); Adam's steps must agree.");
        }

        using var noGrad = torch.no_grad();
        foreach (var slice in _slices)
        {
            if (!byName.TryGetValue(slice.Name, out var saved))
            {
                throw new InvalidDataException($"the optimizer state lacks parameter '{slice.Name}'.");
            }

            CopyInto(_expAvg, slice, saved.ExpAvg);
            CopyInto(_expAvgSq, slice, saved.ExpAvgSq);
        }

        Steps = steps[0];
    }

    public void Dispose()
    {
        // The parameters keep the flat values' storage alive (they are views of it); the gradients likewise.
        _values.Dispose();
        _gradients.Dispose();
        _expAvg.Dispose();
        _expAvgSq.Dispose();
        foreach (var scalar in new[] { _beta1, _oneMinusBeta1, _beta2, _oneMinusBeta2, _epsilon })
        {
            scalar.Dispose();
        }
    }

    private static float[] ToArray(Tensor flat, Slice slice)
    {
        using var part = flat.narrow(0, slice.Offset, slice.Count);
        using var cpu = part.cpu();
        return cpu.data<float>().ToArray();
    }

    private static void CopyInto(Tensor flat, Slice slice, float[] values)
    {
        if (values.LongLength != slice.Count)
        {
            throw new InvalidDataException($"the optimizer state of '{slice.Name}' has {values.LongLength} values; the parameter has {slice.Count}.");
        }

        using var part = flat.narrow(0, slice.Offset, slice.Count);
        using var source = torch.tensor(values);
        part.copy_(source);
    }

    private sealed record Slice(string Name, Parameter Parameter, long Offset, long Count, long[] Shape);
}
