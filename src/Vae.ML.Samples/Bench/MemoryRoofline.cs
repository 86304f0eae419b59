using System.Diagnostics;
using System.Numerics;
using System.Runtime.Intrinsics;
using static System.FormattableString;

namespace Vae.ML.Samples.Bench;

/// <summary>
/// The Adam pass against this machine's memory bandwidth, measured in the bench's process with the bench's threads:
/// a STREAM-style copy and triad over arrays the size of Adam's buffers (the working set the pass really streams) and
/// over arrays far beyond the caches, then the Adam pass itself, each on one thread and on all threads in fixed
/// contiguous ranges. Bandwidths in GB/s (10⁹ bytes), times in ms; medians.
/// </summary>
/// <param name="Parameters">Parameters of the report's network (the length of each Adam buffer).</param>
/// <param name="Threads">Threads of the "all threads" columns.</param>
/// <param name="VectorBits"><c>Vector&lt;float&gt;</c>'s width, the library's Adam pass's.</param>
/// <param name="Vector512Accelerated">Whether <c>Vector512</c> runs in hardware here.</param>
/// <param name="Copy">Copy (b ← a, 8 bytes per element counted) over Adam-sized arrays: one thread, all threads.</param>
/// <param name="Triad">Triad (a ← b + s·c, 12 bytes per element) over Adam-sized arrays: one thread, all threads.</param>
/// <param name="LargeTriad">Triad over three arrays of <paramref name="LargeMegabytes"/> MB each: one thread, all threads.</param>
/// <param name="Adam">The Adam pass (28 bytes per parameter: g, p, m, v read; p, m, v written) at <c>Vector&lt;float&gt;</c>: one thread, all threads.</param>
/// <param name="Adam512">The same pass with <c>Vector512</c> (0 where it is not accelerated): one thread, all threads.</param>
/// <param name="LargeMegabytes">The size of each array of <paramref name="LargeTriad"/> (64 MB; 4 MB in quick mode).</param>
/// <param name="ForkJoinMicroseconds">One <c>Parallel.For</c> over as many empty ranges as threads, the price of each
/// split pass (median, µs).</param>
internal sealed record RooflineMeasure(int Parameters, int Threads, int VectorBits, bool Vector512Accelerated,
    OneAndAll Copy, OneAndAll Triad, OneAndAll LargeTriad,
    OneAndAll Adam, OneAndAll Adam512, int LargeMegabytes = 64, double ForkJoinMicroseconds = 0)
{
    /// <summary>Bytes the Adam pass moves per step.</summary>
    public const int AdamBytesPerParameter = 28;

    /// <summary>The Adam pass's time if it ran at the Adam-sized triad's bandwidth (ms): one thread, all threads.</summary>
    public OneAndAll AdamAtTriad => new(Ms(Triad.One), Ms(Triad.All));

    /// <summary>One line for the console and results.md.</summary>
    public string Describe()
    {
        string wide = Vector512Accelerated ? Invariant($"{Adam512.One:F3} / {Adam512.All:F3} ms at 512-bit") : "512-bit vectors not accelerated";
        return Invariant($"Memory roofline, {Parameters:N0} parameters ({Parameters * (double)AdamBytesPerParameter / 1e6:F1} MB moved per Adam step), 1 / {Threads} threads: ") +
            Invariant($"copy {Copy.One:F1} / {Copy.All:F1} GB/s, triad {Triad.One:F1} / {Triad.All:F1} GB/s (3 x {LargeMegabytes} MB: {LargeTriad.One:F1} / {LargeTriad.All:F1}); ") +
            Invariant($"Adam pass {Adam.One:F3} / {Adam.All:F3} ms at {VectorBits}-bit vectors ({Bandwidth(Adam.One):F1} / {Bandwidth(Adam.All):F1} GB/s), {wide}; ") +
            Invariant($"at the triad's bandwidth it would take {AdamAtTriad.One:F3} / {AdamAtTriad.All:F3} ms. A fork/join over {Threads} empty ranges: {ForkJoinMicroseconds:F1} µs.");
    }

    private double Bandwidth(double ms) => Parameters * (double)AdamBytesPerParameter / (ms * 1e6);

    private double Ms(double gigabytesPerSecond) => Parameters * (double)AdamBytesPerParameter / (gigabytesPerSecond * 1e6);

    /// <summary>
    /// Measures it all for <paramref name="parameters"/> parameters on 1 and <paramref name="threads"/> threads, the
    /// large triad over three arrays of <paramref name="largeMegabytes"/> MB.
    /// </summary>
    public static RooflineMeasure Measure(int parameters, int threads, int repeats, int largeMegabytes = 64)
    {
        var (a, b, c, d) = (Filled(parameters, 1), Filled(parameters, 2), Filled(parameters, 3), Filled(parameters, 0.5f));
        const float s = 3f;
        double Rate(double bytesPerElement, int count, double ms) => count * bytesPerElement / (ms * 1e6);
        OneAndAll Both(Action<int, int> kernel, int count, int times) =>
            new(Time(kernel, count, 1, times), Time(kernel, count, threads, times));

        var copy = Both((start, end) => a.AsSpan(start, end - start).CopyTo(b.AsSpan(start, end - start)), parameters, repeats);
        var triad = Both((start, end) => TriadRange(a, b, c, s, start, end), parameters, repeats);

        // Adam's buffers: p, g, m, v; a gradient that changes nothing between repeats, a step size that keeps p finite.
        var adam = Both((start, end) => AdamPass.Range(a, d, b, c, start, end, -1e-3f, 0.03f), parameters, repeats);
        var adam512 = Vector512.IsHardwareAccelerated
            ? Both((start, end) => AdamPass.Range512(a, d, b, c, start, end, -1e-3f, 0.03f), parameters, repeats)
            : new OneAndAll(0, 0);

        int large = largeMegabytes << 18;
        var (la, lb, lc) = (Filled(large, 1), Filled(large, 2), Filled(large, 3));
        var largeTriad = Both((start, end) => TriadRange(la, lb, lc, s, start, end), large, Math.Max(3, repeats / 10));
        double forkJoin = Time((_, _) => { }, threads, threads, Math.Max(50, repeats * 20)) * 1000;
        return new RooflineMeasure(parameters, threads, Vector<float>.Count * 32, Vector512.IsHardwareAccelerated,
            new(Rate(8, parameters, copy.One), Rate(8, parameters, copy.All)),
            new(Rate(12, parameters, triad.One), Rate(12, parameters, triad.All)),
            new(Rate(12, large, largeTriad.One), Rate(12, large, largeTriad.All)),
            adam, adam512, largeMegabytes, forkJoin);
    }

    private static float[] Filled(int count, float value)
    {
        var values = new float[count];
        Array.Fill(values, value);
        return values;
    }

    private static void TriadRange(float[] a, float[] b, float[] c, float s, int start, int end)
    {
        int i = start, width = Vector<float>.Count;
        for (; i <= end - width; i += width)
        {
            (new Vector<float>(b, i) + (s * new Vector<float>(c, i))).CopyTo(a, i);
        }

        for (; i < end; i++)
        {
            a[i] = b[i] + (s * c[i]);
        }
    }

    /// <summary>Median milliseconds of <paramref name="kernel"/> over [0, count) cut into <paramref name="parts"/> fixed ranges.</summary>
    private static double Time(Action<int, int> kernel, int count, int parts, int repeats)
    {
        // Range boundaries at multiples of 16 floats: whole 512-bit vectors and 64-byte cache lines.
        const int Alignment = 16;
        var times = new double[repeats];
        for (int r = -3; r < repeats; r++)
        {
            long start = Stopwatch.GetTimestamp();
            if (parts == 1)
            {
                kernel(0, count);
            }
            else
            {
                Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
                    kernel((int)((long)count * part / parts / Alignment * Alignment), part == parts - 1 ? count : (int)((long)count * (part + 1) / parts / Alignment * Alignment)));
            }

            if (r >= 0)
            {
                times[r] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }

        return Spread.Of(times).Median;
    }
}

/// <summary>A measure on one thread and on all of the bench's threads.</summary>
/// <param name="One">On one thread.</param>
/// <param name="All">On all threads, in fixed contiguous ranges.</param>
internal sealed record OneAndAll(double One, double All);

/// <summary>
/// torch.optim.Adam's update as the library's <c>FlatAdam</c> computes it on the CPU (β₁ 0.9, β₂ 0.999, ε 1e-8; no
/// fused multiply-add), over a range of four flat buffers: a copy, since the library's is internal.
/// </summary>
internal static class AdamPass
{
    /// <summary>Elements [start, end) at <c>Vector&lt;float&gt;</c> width; returns the largest |g|.</summary>
    public static float Range(Span<float> p, Span<float> g, Span<float> m, Span<float> v, int start, int end, float stepSize, float root)
    {
        int i = start, width = Vector<float>.Count;
        var largest = Vector<float>.Zero;
        for (; i <= end - width; i += width)
        {
            var gv = new Vector<float>(g.Slice(i, width));
            var mv = Flush((new Vector<float>(m.Slice(i, width)) * 0.9f) + (gv * 0.1f));
            var vv = Flush((new Vector<float>(v.Slice(i, width)) * 0.999f) + (0.001f * gv * gv));
            var pv = new Vector<float>(p.Slice(i, width)) + (stepSize * (mv / ((Vector.SquareRoot(vv) / root) + new Vector<float>(1e-8f))));
            mv.CopyTo(m.Slice(i, width));
            vv.CopyTo(v.Slice(i, width));
            pv.CopyTo(p.Slice(i, width));
            largest = Vector.Max(largest, Vector.Abs(gv));
        }

        float result = 0;
        for (int lane = 0; lane < width; lane++)
        {
            result = Math.Max(result, largest[lane]);
        }

        return Math.Max(result, Tail(p, g, m, v, i, end, stepSize, root));
    }

    /// <summary>The same at <c>Vector512</c> width (the same bits: every operation is correctly rounded element by element).</summary>
    public static float Range512(Span<float> p, Span<float> g, Span<float> m, Span<float> v, int start, int end, float stepSize, float root)
    {
        int i = start, width = Vector512<float>.Count;
        var largest = Vector512<float>.Zero;
        for (; i <= end - width; i += width)
        {
            var gv = Vector512.Create((ReadOnlySpan<float>)g.Slice(i, width));
            var mv = Flush((Vector512.Create((ReadOnlySpan<float>)m.Slice(i, width)) * 0.9f) + (gv * 0.1f));
            var vv = Flush((Vector512.Create((ReadOnlySpan<float>)v.Slice(i, width)) * 0.999f) + (0.001f * gv * gv));
            var pv = Vector512.Create((ReadOnlySpan<float>)p.Slice(i, width)) + (stepSize * (mv / ((Vector512.Sqrt(vv) / root) + Vector512.Create(1e-8f))));
            mv.CopyTo(m.Slice(i, width));
            vv.CopyTo(v.Slice(i, width));
            pv.CopyTo(p.Slice(i, width));
            largest = Vector512.Max(largest, Vector512.Abs(gv));
        }

        return Math.Max(MaxOf(largest), Tail(p, g, m, v, i, end, stepSize, root));
    }

    // Moments below 2^-125 are stored as zero, as the library's pass does (FlatAdam.TinyMoment, internal: subnormal floats
    // take a microcode assist on x86); AdamPassTests checks the two give the same bits.
    private const float TinyMoment = 2.3509887e-38f;

    private static Vector<float> Flush(Vector<float> x)
        => Vector.ConditionalSelect(Vector.LessThan(Vector.Abs(x), new Vector<float>(TinyMoment)), Vector<float>.Zero, x);

    private static Vector512<float> Flush(Vector512<float> x)
        => Vector512.ConditionalSelect(Vector512.LessThan(Vector512.Abs(x), Vector512.Create(TinyMoment)), Vector512<float>.Zero, x);

    private static float Flush(float x) => MathF.Abs(x) < TinyMoment ? 0f : x;

    private static float MaxOf(Vector512<float> values)
    {
        float result = 0;
        for (int lane = 0; lane < Vector512<float>.Count; lane++)
        {
            result = Math.Max(result, values.GetElement(lane));
        }

        return result;
    }

    private static float Tail(Span<float> p, Span<float> g, Span<float> m, Span<float> v, int i, int end, float stepSize, float root)
    {
        float result = 0;
        for (; i < end; i++)
        {
            m[i] = Flush((m[i] * 0.9f) + (g[i] * 0.1f));
            v[i] = Flush((v[i] * 0.999f) + (0.001f * g[i] * g[i]));
            p[i] += stepSize * (m[i] / ((MathF.Sqrt(v[i]) / root) + 1e-8f));
            result = Math.Max(result, Math.Abs(g[i]));
        }

        return result;
    }
}
