using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Vae.ML.Torch;

/// <summary>
/// A rows × columns float matrix of the CPU training step, allocated once per batch size: a libtorch tensor (so the
/// GEMMs read and write it directly), its transposed view (for the weight gradients gᵀ·x) and its values as a span.
/// </summary>
internal sealed unsafe class StepMatrix : IDisposable
{
    private readonly float* _values;

    public StepMatrix(int rows, int columns)
    {
        Rows = rows;
        Columns = columns;

        // Outlives any dispose scope it happens to be created in (the first batch's): the step owns it.
        Tensor = zeros(rows, columns).DetachFromDisposeScope();
        Transposed = Tensor.t().DetachFromDisposeScope();
        _values = StepMemory.Pointer(Tensor);
    }

    public int Rows { get; }

    public int Columns { get; }

    public Tensor Tensor { get; }

    /// <summary>A columns × rows view of the same memory.</summary>
    public Tensor Transposed { get; }

    public Span<float> Values => new(_values, Rows * Columns);

    public Span<float> Row(int row) => new(_values + ((long)row * Columns), Columns);

    public void Dispose()
    {
        Transposed.Dispose();
        Tensor.Dispose();
    }
}

/// <summary>
/// A contiguous rows × columns float matrix by pointer (a batch tensor's memory), read row by row; owns nothing. Unlike
/// a span it can be handed to the ranges of a <see cref="StepPartition"/>.
/// </summary>
internal readonly unsafe struct StepRows
{
    private readonly float* _values;

    public StepRows(Tensor matrix)
    {
        _values = StepMemory.Pointer(matrix);
        Columns = checked((int)matrix.shape[1]);
    }

    public int Columns { get; }

    public ReadOnlySpan<float> Row(int row) => new(_values + ((long)row * Columns), Columns);
}

/// <summary>Raw access to contiguous CPU tensors' memory, and libtorch's GEMM written into a preallocated result.</summary>
internal static unsafe class StepMemory
{
    /// <summary>The first float of a contiguous CPU float tensor (a view's, after its offset).</summary>
    public static float* Pointer(Tensor tensor)
    {
        if (tensor.device_type != DeviceType.CPU || tensor.dtype != ScalarType.Float32 || !tensor.is_contiguous())
        {
            throw new InvalidOperationException($"the CPU step needs contiguous Float32 CPU tensors, not a {tensor.dtype} tensor on {tensor.device}.");
        }

        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(tensor.bytes));
    }

    public static ReadOnlySpan<float> Values(Tensor tensor) => Span(tensor);

    public static Span<float> Span(Tensor tensor) => new(Pointer(tensor), checked((int)tensor.numel()));

    /// <summary>target ← a·b, or target ← target + a·b when <paramref name="accumulate"/>: one libtorch call, no allocation.</summary>
    public static void Gemm(Tensor target, Tensor a, Tensor b, bool accumulate = false)
    {
        // beta 0 ignores the target's old values (BLAS semantics), so nothing needs zeroing first.
        ReleaseAlias(target, target.addmm_(a, b, beta: accumulate ? 1 : 0, alpha: 1));
    }

    /// <summary>Frees the handle an in-place operation returned, unless it is <paramref name="target"/> itself.</summary>
    public static void ReleaseAlias(Tensor target, Tensor result)
    {
        // Some TorchSharp versions return a second handle to the same tensor, others the target itself.
        if (!ReferenceEquals(result, target))
        {
            result.Dispose();
        }
    }
}

/// <summary>
/// One dense layer y = x·Wᵀ + b of the CPU training step, on its parameter's memory and its gradient's (both views
/// into <see cref="FlatAdam"/>'s flat buffers): the GEMMs in libtorch, the bias, ReLU and bias sums in managed code.
/// </summary>
internal sealed unsafe class CpuDense : IDisposable
{
    private readonly Tensor _weight;
    private readonly Tensor _weightTransposed;
    private readonly Tensor _weightGradient;
    private readonly float* _bias;
    private readonly float* _biasGradient;
    private readonly StepPartition _partition;

    /// <summary>The layer on <paramref name="parameters"/>' memory; its managed passes cut by <paramref name="partition"/>.</summary>
    public CpuDense(LayerSpec layer, IReadOnlyDictionary<string, Parameter> parameters, StepPartition partition)
    {
        _partition = partition;
        var weight = parameters[layer.Name + ".weight"];
        var bias = parameters[layer.Name + ".bias"];
        Inputs = layer.Inputs;
        Outputs = layer.Outputs;
        _weight = weight.detach().DetachFromDisposeScope();
        _weightTransposed = _weight.t().DetachFromDisposeScope();
        _weightGradient = GradientOf(weight, layer.Name + ".weight");
        _bias = StepMemory.Pointer(bias);
        using var biasGradient = GradientOf(bias, layer.Name + ".bias");
        _biasGradient = StepMemory.Pointer(biasGradient);
    }

    public int Inputs { get; }

    /// <summary>A new handle on the parameter's gradient (a view into the flat gradient buffer), owned by the caller.</summary>
    private static Tensor GradientOf(Parameter parameter, string name)
        => (parameter.grad ?? throw new InvalidOperationException($"'{name}' has no gradient buffer; create the optimizer first.")).DetachFromDisposeScope();

    public int Outputs { get; }

    private ReadOnlySpan<float> Bias => new(_bias, Outputs);

    /// <summary>y = x·Wᵀ + b, then ReLU when <paramref name="relu"/>; the bias and ReLU pass by rows.</summary>
    public void Forward(Tensor input, StepMatrix output, bool relu)
    {
        StepMemory.Gemm(output.Tensor, input, _weightTransposed);
        _partition.For(output.Rows, output.Columns, (_, first, end) =>
        {
            for (var row = first; row < end; row++)
            {
                var y = output.Row(row);
                TensorPrimitives.Add(y, Bias, y);
                if (relu)
                {
                    TensorPrimitives.Max(y, 0f, y);
                }
            }
        });
    }

    /// <summary>
    /// From g = ∂L/∂y: ∂L/∂W = gᵀ·x and ∂L/∂b = Σ_rows g into the gradient buffers; with <paramref name="inputGradient"/>,
    /// ∂L/∂x = g·W into it (added to what it holds when <paramref name="accumulate"/>). With <paramref name="reluOutput"/>
    /// the layer's output went through a ReLU and g arrives as ∂L/∂ReLU(y): it is masked in place first (in the same pass
    /// over g as the bias sums).
    /// </summary>
    public void Backward(StepMatrix gradient, Tensor input, StepMatrix? inputGradient, bool accumulate = false, StepMatrix? reluOutput = null)
    {
        // By columns, so each bias's sum still runs over the rows in order: the same bits on any number of threads; cut
        // at cache lines, as the mask writes g in place.
        _partition.For(Outputs, gradient.Rows * (reluOutput is null ? 1 : 2), (_, first, end) =>
        {
            var biasGradient = new Span<float>(_biasGradient + first, end - first);
            for (var row = 0; row < gradient.Rows; row++)
            {
                var g = gradient.Row(row)[first..end];
                if (reluOutput is not null)
                {
                    ReluBackward(g, reluOutput.Row(row)[first..end]);
                }

                if (row == 0)
                {
                    g.CopyTo(biasGradient);
                }
                else
                {
                    TensorPrimitives.Add(biasGradient, g, biasGradient);
                }
            }
        }, StepPartition.FloatsPerCacheLine);

        StepMemory.Gemm(_weightGradient, gradient.Transposed, input);
        if (inputGradient is not null)
        {
            StepMemory.Gemm(inputGradient.Tensor, gradient.Tensor, _weight, accumulate);
        }
    }

    /// <summary>ReLU's backward in place: ∂L/∂pre = ∂L/∂y where y = ReLU(pre) &gt; 0, else 0.</summary>
    private static void ReluBackward(Span<float> gradient, ReadOnlySpan<float> activation)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var width = Vector<float>.Count;
            for (; i <= gradient.Length - width; i += width)
            {
                var active = Vector.GreaterThan(new Vector<float>(activation.Slice(i, width)), Vector<float>.Zero);
                Vector.ConditionalSelect(active, new Vector<float>(gradient.Slice(i, width)), Vector<float>.Zero).CopyTo(gradient.Slice(i, width));
            }
        }

        for (; i < gradient.Length; i++)
        {
            gradient[i] = activation[i] > 0 ? gradient[i] : 0;
        }
    }

    public void Dispose()
    {
        _weightTransposed.Dispose();
        _weight.Dispose();
        _weightGradient.Dispose();
    }
}
