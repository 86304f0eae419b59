using Microsoft.ML.OnnxRuntime;

namespace Vae.ML.Tests.Onnx;

/// <summary>Runs an exported model through ONNX Runtime and compares its outputs with Vae.ML's.</summary>
internal static class OnnxTestSupport
{
    /// <summary>
    /// The agreement the issue asks for: |a − b| ≤ 1e-5 · max(|a|, |b|, floor), NaN meeting NaN. The floor is the scale
    /// the value is computed at (<see cref="Floor"/>), so that a value near 0 is held to 1e-5 of that scale rather than to
    /// a relative error that float32 sums taken in another order cannot reach.
    /// </summary>
    public const double Relative = 1e-5;

    /// <summary>
    /// 1 for Latent, LatentLogVariance and Reconstruction (values of order 1: latent coordinates, probabilities, MNIST
    /// pixels). For Score, max(1, |Σ log std|): the Gaussian score adds that constant to the row's sum, so a score near 0
    /// is the difference of two numbers of that size and carries their float32 rounding (e.g. Σ log std = −931 on
    /// standardized MNIST, where one float32 step is 6e-5); for Bernoulli models it is 1.
    /// </summary>
    public static double Floor(VaeTransformer vae, string column)
        => column == vae.ScoreColumnName && vae.Standardization is { } s ? Math.Max(1, Math.Abs(s.Std.Sum(v => Math.Log(v)))) : 1;

    public static InferenceSession Session(VaeTransformer vae)
    {
        using var stream = new MemoryStream();
        vae.ExportOnnx(stream);
        return new InferenceSession(stream.ToArray());
    }

    /// <summary>Every output of the session for row-major <paramref name="inputs"/>, by output name, scored in batches of <paramref name="batch"/> rows.</summary>
    public static Dictionary<string, float[]> Run(InferenceSession session, float[] inputs, int width, int batch = 1000)
    {
        var rows = inputs.Length / width;
        var outputs = session.OutputNames.ToDictionary(n => n, _ => new List<float>());
        using var runOptions = new RunOptions();
        for (var start = 0; start < rows; start += batch)
        {
            var count = Math.Min(batch, rows - start);
            var slice = inputs.AsSpan(start * width, count * width).ToArray();
            using var input = OrtValue.CreateTensorValueFromMemory(slice, [count, width]);
            using var results = session.Run(runOptions, new Dictionary<string, OrtValue> { [session.InputNames[0]] = input }, session.OutputNames);
            var i = 0;
            foreach (var name in session.OutputNames)
            {
                outputs[name].AddRange(results.ElementAt(i++).GetTensorDataAsSpan<float>().ToArray());
            }
        }

        return outputs.ToDictionary(p => p.Key, p => p.Value.ToArray());
    }

    /// <summary>Vae.ML's own outputs on the array API, named like the columns.</summary>
    public static Dictionary<string, float[]> Expected(VaeTransformer vae, float[] inputs)
    {
        var mu = vae.Encode(inputs, out var logVariances);
        return new()
        {
            [vae.LatentColumnName] = mu,
            [vae.LatentLogVarianceColumnName] = logVariances,
            [vae.ReconstructionColumnName] = vae.Reconstruct(inputs),
            [vae.ScoreColumnName] = vae.Score(inputs),
        };
    }

    /// <summary>The largest |a − b| / max(|a|, |b|, floor) over the values; NaN against NaN is 0, NaN against a number is ∞.</summary>
    public static double WorstRelativeError(float[] actual, float[] expected, double floor)
    {
        actual.Should().HaveSameCount(expected);
        var worst = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            double a = actual[i], b = expected[i];
            var error = double.IsNaN(a) || double.IsNaN(b)
                ? double.IsNaN(a) && double.IsNaN(b) ? 0 : double.PositiveInfinity
                : Math.Abs(a - b) / Math.Max(Math.Max(Math.Abs(a), Math.Abs(b)), floor);
            worst = Math.Max(worst, error);
        }

        return worst;
    }

    public static void ShouldAgree(VaeTransformer vae, Dictionary<string, float[]> actual, Dictionary<string, float[]> expected)
    {
        actual.Keys.Should().BeEquivalentTo(expected.Keys);
        foreach (var (name, values) in expected)
        {
            WorstRelativeError(actual[name], values, Floor(vae, name)).Should().BeLessThanOrEqualTo(Relative, $"ONNX output '{name}' must match Vae.ML's within 1e-5 relative");
        }
    }
}
