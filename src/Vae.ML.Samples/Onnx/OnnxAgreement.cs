using Microsoft.ML.OnnxRuntime;

namespace Vae.ML.Samples.Onnx;

/// <summary>
/// How closely an exported model's outputs, run by ONNX Runtime, follow Vae.ML's: |a − b| / max(|a|, |b|, floor) per
/// value (NaN meeting NaN counts as agreement). The floor is the scale the value is computed at (<see cref="Floor"/>),
/// so a value near 0 is held to a fraction of that scale rather than to a relative error that float32 sums taken in
/// another order cannot reach. The issue asks for 1e-5 (<see cref="Tolerance"/>).
/// </summary>
internal static class OnnxAgreement
{
    /// <summary>The agreement asked for: 1e-5 relative.</summary>
    public const double Tolerance = 1e-5;

    /// <summary>
    /// 1 for Latent, LatentLogVariance and Reconstruction (values of order 1: latent coordinates, probabilities, MNIST
    /// pixels). For Score, max(1, |Σ log std|), read from the model's "vae.score_offset" metadata: the Gaussian score adds
    /// that constant to the row's sum, so a score near 0 is the difference of two numbers of that size and carries their
    /// float32 rounding (e.g. Σ log std = −931 on standardized MNIST, where one float32 step is 6e-5); Bernoulli models
    /// have no offset, and the floor is 1.
    /// </summary>
    public static double Floor(VaeTransformer vae, InferenceSession session, string column)
        => column == vae.ScoreColumnName && session.ModelMetadata.CustomMetadataMap.TryGetValue("vae.score_offset", out string? offset)
            ? Math.Max(1, Math.Abs(double.Parse(offset, System.Globalization.CultureInfo.InvariantCulture)))
            : 1;

    /// <summary>Vae.ML's own outputs on the array API, by column name.</summary>
    public static Dictionary<string, float[]> Expected(VaeTransformer vae, float[] inputs)
    {
        float[] mu = vae.Encode(inputs, out float[] logVariances);
        return new()
        {
            [vae.LatentColumnName] = mu,
            [vae.LatentLogVarianceColumnName] = logVariances,
            [vae.ReconstructionColumnName] = vae.Reconstruct(inputs),
            [vae.ScoreColumnName] = vae.Score(inputs),
        };
    }

    /// <summary>Every output of <paramref name="session"/> for row-major <paramref name="inputs"/>, by name, run in batches of <paramref name="batch"/> rows.</summary>
    public static Dictionary<string, float[]> RunSession(InferenceSession session, float[] inputs, int width, int batch)
    {
        int rows = inputs.Length / width;
        var outputs = session.OutputNames.ToDictionary(n => n, _ => new List<float>());
        using var runOptions = new RunOptions();
        for (int start = 0; start < rows; start += batch)
        {
            int count = Math.Min(batch, rows - start);
            var memory = new Memory<float>(inputs, start * width, count * width);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, memory, [count, width]);
            using var results = session.Run(runOptions, [session.InputNames[0]], [input], session.OutputNames);
            int i = 0;
            foreach (string name in session.OutputNames)
            {
                outputs[name].AddRange(results.ElementAt(i++).GetTensorDataAsSpan<float>().ToArray());
            }
        }

        return outputs.ToDictionary(p => p.Key, p => p.Value.ToArray());
    }

    /// <summary>The largest |a − b| / max(|a|, |b|, floor); NaN against NaN is 0, NaN against a number is ∞.</summary>
    public static double WorstRelativeError(float[] actual, float[] expected, double floor)
    {
        if (actual.Length != expected.Length)
        {
            return double.PositiveInfinity;
        }

        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double a = actual[i], b = expected[i];
            double error = double.IsNaN(a) || double.IsNaN(b)
                ? double.IsNaN(a) && double.IsNaN(b) ? 0 : double.PositiveInfinity
                : Math.Abs(a - b) / Math.Max(Math.Max(Math.Abs(a), Math.Abs(b)), floor);
            worst = Math.Max(worst, error);
        }

        return worst;
    }

    /// <summary>The worst disagreement per column of <paramref name="session"/>'s outputs with Vae.ML's on row-major <paramref name="inputs"/>.</summary>
    public static Dictionary<string, double> Compare(VaeTransformer vae, InferenceSession session, float[] inputs, int batch)
    {
        Dictionary<string, float[]> actual = RunSession(session, inputs, vae.InputSize, batch);
        return Expected(vae, inputs).ToDictionary(p => p.Key,
            p => actual.TryGetValue(p.Key, out float[]? values) ? WorstRelativeError(values, p.Value, Floor(vae, session, p.Key)) : double.PositiveInfinity);
    }
}
