using System.Numerics;
using System.Runtime.CompilerServices;

namespace Vae.ML.Torch;

/// <summary>
/// The matrix products of a narrow dense layer (few inputs or few outputs: a latent head 400→2, the decoder's 2→400)
/// in managed code. Such a product is about 0.1M multiply-adds at batch 128, which libtorch's GEMM runs at a quarter of
/// its rate on wider layers; a loop over the long side with <see cref="Vector{T}"/> matches it (measured:
/// docs/performance.md, "The small layers in managed code"), without a libtorch call or its threads' wake-up. The layer's weight is held as a narrow
/// matrix N (k × n, k the few side, n the long one), so every product is one of three shapes, each computed per row or
/// column strip of its result, in a fixed order.
/// </summary>
/// <remarks>
/// Deterministic whatever the ranges: a dot product's lanes and tail depend on its length alone (not on where its
/// memory is aligned, as <c>TensorPrimitives</c>' reductions do), the other two are element by element (a product
/// rounded, then a sum rounded: no fused multiply-add, so the vector body and the scalar tail round alike), and every
/// sum over the batch runs in row order. The loops are compiled optimized at once: tiered compilation would first run
/// the vector code unoptimized (tens of times slower), the longer on a busy machine whose background compiler waits.
/// </remarks>
internal static unsafe class NarrowProducts
{
    /// <summary>
    /// Rows [<paramref name="first"/>, <paramref name="end"/>) of Y = A·Nᵀ: Y[r, j] = start + Σ_i A[r, i]·N[j, i], where
    /// start is <paramref name="bias"/>[j] when it is not empty, else Y's old value when <paramref name="accumulate"/>,
    /// else zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dots(StepRows a, StepRows narrow, int k, StepMatrix y, int first, int end, ReadOnlySpan<float> bias, bool accumulate)
    {
        var n = a.Columns;
        for (var r = first; r < end; r++)
        {
            var ar = a.Pointer + ((long)r * n);
            var yr = y.Pointer + ((long)r * k);
            for (var j = 0; j < k; j++)
            {
                var start = !bias.IsEmpty ? bias[j] : accumulate ? yr[j] : 0;
                yr[j] = start + Dot(ar, narrow.Pointer + ((long)j * n), n);
            }
        }
    }

    /// <summary>
    /// Rows [<paramref name="first"/>, <paramref name="end"/>) of Y = C·N: Y[r] = start + Σ_j C[r, j]·N[j] (j in order),
    /// where start is <paramref name="bias"/> when it is not empty, else Y's old row when <paramref name="accumulate"/>,
    /// else zero. Each vector of Y[r] is loaded and stored once, its k terms added in a register.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Combine(StepRows c, StepRows narrow, int k, StepMatrix y, int first, int end, ReadOnlySpan<float> bias, bool accumulate)
    {
        var n = y.Columns;
        var width = Vector<float>.Count;
        fixed (float* b = bias)
        {
            for (var r = first; r < end; r++)
            {
                var cr = c.Pointer + ((long)r * k);
                var yr = y.Pointer + ((long)r * n);
                var i = 0;
                if (Vector.IsHardwareAccelerated)
                {
                    for (; i <= n - width; i += width)
                    {
                        var sum = b != null ? Vector.Load(b + i) : accumulate ? Vector.Load(yr + i) : Vector<float>.Zero;
                        var column = narrow.Pointer + i;
                        for (var j = 0; j < k; j++, column += n)
                        {
                            sum += Vector.Load(column) * cr[j];
                        }

                        Vector.Store(sum, yr + i);
                    }
                }

                for (; i < n; i++)
                {
                    var sum = b != null ? b[i] : accumulate ? yr[i] : 0;
                    for (var j = 0; j < k; j++)
                    {
                        sum += narrow.Pointer[((long)j * n) + i] * cr[j];
                    }

                    yr[i] = sum;
                }
            }
        }
    }

    /// <summary>
    /// Columns [<paramref name="first"/>, <paramref name="end"/>) of G = Cᵀ·A: G[j] = Σ_r C[r, j]·A[r] over the
    /// <paramref name="rows"/> in row order (the weight gradient of a narrow layer). Four vectors of G[j] are summed in
    /// registers at once (four independent chains over the rows), their strip of A staying in the L1 cache for every j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void OuterSums(StepRows c, StepRows a, int rows, StepMatrix g, int first, int end)
    {
        int k = g.Rows, n = a.Columns, width = Vector<float>.Count;
        var i = first;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= end - (4 * width); i += 4 * width)
            {
                for (var j = 0; j < k; j++)
                {
                    Vector<float> s0 = Vector<float>.Zero, s1 = Vector<float>.Zero, s2 = Vector<float>.Zero, s3 = Vector<float>.Zero;
                    var ar = a.Pointer + i;
                    var cr = c.Pointer + j;
                    for (var r = 0; r < rows; r++, ar += n, cr += k)
                    {
                        var coefficient = *cr;
                        s0 += Vector.Load(ar) * coefficient;
                        s1 += Vector.Load(ar + width) * coefficient;
                        s2 += Vector.Load(ar + (2 * width)) * coefficient;
                        s3 += Vector.Load(ar + (3 * width)) * coefficient;
                    }

                    var gj = g.Pointer + ((long)j * n) + i;
                    Vector.Store(s0, gj);
                    Vector.Store(s1, gj + width);
                    Vector.Store(s2, gj + (2 * width));
                    Vector.Store(s3, gj + (3 * width));
                }
            }
        }

        for (; i < end; i++)
        {
            for (var j = 0; j < k; j++)
            {
                var sum = 0f;
                for (var r = 0; r < rows; r++)
                {
                    sum += a.Pointer[((long)r * n) + i] * c.Pointer[((long)r * k) + j];
                }

                g.Pointer[((long)j * n) + i] = sum;
            }
        }
    }

    /// <summary>Σ x[i]·y[i] over <paramref name="n"/> values: four vector accumulators, then one, then the scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* x, float* y, int n)
    {
        var width = Vector<float>.Count;
        var i = 0;
        var sum = 0f;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<float> s0 = Vector<float>.Zero, s1 = Vector<float>.Zero, s2 = Vector<float>.Zero, s3 = Vector<float>.Zero;
            for (; i <= n - (4 * width); i += 4 * width)
            {
                s0 += Vector.Load(x + i) * Vector.Load(y + i);
                s1 += Vector.Load(x + i + width) * Vector.Load(y + i + width);
                s2 += Vector.Load(x + i + (2 * width)) * Vector.Load(y + i + (2 * width));
                s3 += Vector.Load(x + i + (3 * width)) * Vector.Load(y + i + (3 * width));
            }

            for (; i <= n - width; i += width)
            {
                s0 += Vector.Load(x + i) * Vector.Load(y + i);
            }

            sum = Vector.Sum((s0 + s1) + (s2 + s3));
        }

        for (; i < n; i++)
        {
            sum += x[i] * y[i];
        }

        return sum;
    }

    /// <summary>target (columns × rows) ← sourceᵀ, source rows × columns.</summary>
    public static void Transpose(ReadOnlySpan<float> source, int rows, int columns, Span<float> target)
    {
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                target[(c * rows) + r] = source[(r * columns) + c];
            }
        }
    }
}
