using System.Numerics;

namespace Vae.ML.Torch;

/// <summary>
/// The matrix products of a narrow dense layer (few inputs or few outputs: a latent head 400→2, the decoder's 2→400)
/// in managed code. Such a product is about 0.1M multiply-adds at batch 128, less than libtorch's cost per call; here
/// it is a loop over the long side with <see cref="Vector{T}"/>. The layer's weight is held as a narrow matrix N
/// (k × n, k the few side, n the long one), so every product is one of three shapes, each computed per row of its
/// result and in a fixed order.
/// </summary>
/// <remarks>
/// Deterministic whatever the ranges: a dot product's lanes and tail depend on its length alone (not on where its
/// memory is aligned, as <c>TensorPrimitives</c>' reductions do), a multiply-add is element by element (no fused
/// multiply-add, so the vector body and the scalar tail round alike), and every sum over the batch runs in row order.
/// </remarks>
internal static class NarrowProducts
{
    /// <summary>
    /// Rows [<paramref name="first"/>, <paramref name="end"/>) of Y = A·Nᵀ: Y[r, j] = start + Σ_i A[r, i]·N[j, i], where
    /// start is <paramref name="bias"/>[j] when it is not empty, else Y's old value when <paramref name="accumulate"/>,
    /// else zero.
    /// </summary>
    public static void Dots(StepRows a, StepRows narrow, int k, StepMatrix y, int first, int end, ReadOnlySpan<float> bias, bool accumulate)
    {
        for (var r = first; r < end; r++)
        {
            var ar = a.Row(r);
            var yr = y.Row(r);
            for (var j = 0; j < k; j++)
            {
                var start = !bias.IsEmpty ? bias[j] : accumulate ? yr[j] : 0;
                yr[j] = start + Dot(ar, narrow.Row(j));
            }
        }
    }

    /// <summary>
    /// Rows [<paramref name="first"/>, <paramref name="end"/>) of Y = C·N: Y[r] = start + Σ_j C[r, j]·N[j] (j in order),
    /// where start is <paramref name="bias"/> when it is not empty, else Y's old row when <paramref name="accumulate"/>,
    /// else zero.
    /// </summary>
    public static void Combine(StepRows c, StepRows narrow, int k, StepMatrix y, int first, int end, ReadOnlySpan<float> bias, bool accumulate)
    {
        for (var r = first; r < end; r++)
        {
            var cr = c.Row(r);
            var yr = y.Row(r);
            if (!bias.IsEmpty)
            {
                bias.CopyTo(yr);
            }
            else if (!accumulate)
            {
                yr.Clear();
            }

            for (var j = 0; j < k; j++)
            {
                MultiplyAdd(narrow.Row(j), cr[j], yr);
            }
        }
    }

    /// <summary>
    /// Columns [<paramref name="first"/>, <paramref name="end"/>) of G = Cᵀ·A: G[j] = Σ_r C[r, j]·A[r] over the
    /// <paramref name="rows"/> in row order (the weight gradient of a narrow layer).
    /// </summary>
    public static void OuterSums(StepRows c, StepRows a, int rows, StepMatrix g, int first, int end)
    {
        for (var j = 0; j < g.Rows; j++)
        {
            var gj = g.Row(j)[first..end];
            gj.Clear();
            for (var r = 0; r < rows; r++)
            {
                MultiplyAdd(a.Row(r)[first..end], c.Row(r)[j], gj);
            }
        }
    }

    /// <summary>Σ a[i]·b[i]: four vector accumulators (a dependency chain of a quarter the length), then one, then the tail.</summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var width = Vector<float>.Count;
        var i = 0;
        var sum = 0f;
        if (Vector.IsHardwareAccelerated)
        {
            Vector<float> s0 = Vector<float>.Zero, s1 = Vector<float>.Zero, s2 = Vector<float>.Zero, s3 = Vector<float>.Zero;
            for (; i <= a.Length - (4 * width); i += 4 * width)
            {
                s0 += new Vector<float>(a.Slice(i, width)) * new Vector<float>(b.Slice(i, width));
                s1 += new Vector<float>(a.Slice(i + width, width)) * new Vector<float>(b.Slice(i + width, width));
                s2 += new Vector<float>(a.Slice(i + (2 * width), width)) * new Vector<float>(b.Slice(i + (2 * width), width));
                s3 += new Vector<float>(a.Slice(i + (3 * width), width)) * new Vector<float>(b.Slice(i + (3 * width), width));
            }

            for (; i <= a.Length - width; i += width)
            {
                s0 += new Vector<float>(a.Slice(i, width)) * new Vector<float>(b.Slice(i, width));
            }

            sum = Vector.Sum((s0 + s1) + (s2 + s3));
        }

        for (; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    /// <summary>y[i] ← y[i] + c·x[i], rounded after the product and after the sum (as the scalar tail).</summary>
    public static void MultiplyAdd(ReadOnlySpan<float> x, float c, Span<float> y)
    {
        var width = Vector<float>.Count;
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= x.Length - width; i += width)
            {
                (new Vector<float>(y.Slice(i, width)) + (new Vector<float>(x.Slice(i, width)) * c)).CopyTo(y.Slice(i, width));
            }
        }

        for (; i < x.Length; i++)
        {
            y[i] += c * x[i];
        }
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
