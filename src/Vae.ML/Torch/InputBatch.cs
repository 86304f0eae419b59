using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>
/// A cursor's input rows in native memory: one capacity × width float tensor, allocated once and refilled for every
/// batch. The cursor copies each row straight from the source into it (no managed staging array, no per-batch upload
/// copy), and a scoring pass does not allocate and free its largest block once per batch. The tensor is libtorch's
/// own (64-byte aligned) memory, as every upload is, so the forward pass computes the same bits.
/// </summary>
internal sealed unsafe class InputBatch : IDisposable
{
    private readonly Tensor _tensor;
    private readonly float* _values;
    private bool _disposed;

    public InputBatch(int capacity, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        Capacity = capacity;
        Width = width;
        _tensor = torch.empty(new long[] { capacity, width }, ScalarType.Float32);
        _values = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(_tensor.bytes));
    }

    public int Capacity { get; }

    public int Width { get; }

    /// <summary>The values of row <paramref name="row"/>, to fill or to read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public Span<float> Row(int row)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Capacity);
        return new Span<float>(_values + ((long)row * Width), Width);
    }

    /// <summary>The first <paramref name="rows"/> rows, row-major.</summary>
    public Span<float> Rows(int rows)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, Capacity);
        return new Span<float>(_values, rows * Width);
    }

    /// <summary>The first <paramref name="rows"/> rows as a rows × width tensor sharing this memory (a new handle in the caller's dispose scope).</summary>
    public Tensor Tensor(int rows)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, Capacity);
        return _tensor.narrow(0, 0, rows);
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _tensor.Dispose();
        }
    }
}
