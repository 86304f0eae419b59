using Microsoft.ML.OnnxRuntime;
using Vae.ML.Samples.Onnx;

namespace Vae.ML.Tests.Onnx;

/// <summary>Runs an exported model through ONNX Runtime and holds it to Vae.ML's outputs (the rule: <see cref="OnnxAgreement"/>).</summary>
internal static class OnnxTestSupport
{
    public static InferenceSession Session(VaeTransformer vae)
    {
        using var stream = new MemoryStream();
        vae.ExportOnnx(stream);
        return new InferenceSession(stream.ToArray());
    }

    /// <summary>Checks every column within <see cref="OnnxAgreement.Tolerance"/>, scoring in batches of <paramref name="batch"/> rows; returns the worst errors.</summary>
    public static Dictionary<string, double> ShouldAgree(VaeTransformer vae, InferenceSession session, float[] inputs, int batch)
    {
        var worst = OnnxAgreement.Compare(vae, session, inputs, batch);
        worst.Keys.Should().BeEquivalentTo([vae.LatentColumnName, vae.LatentLogVarianceColumnName, vae.ReconstructionColumnName, vae.ScoreColumnName]);
        foreach (var (name, error) in worst)
        {
            error.Should().BeLessThanOrEqualTo(OnnxAgreement.Tolerance, $"ONNX output '{name}' must match Vae.ML's within 1e-5 relative (batches of {batch})");
        }

        return worst;
    }
}
