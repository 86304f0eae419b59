using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Samples.Onnx;
using Vae.ML.Tests.Persistence;

namespace Vae.ML.Tests.Onnx;

/// <summary>The VAE inside an ML.NET chain (Concatenate → NormalizeMinMax → Vae) and ML.NET's own ONNX converter.</summary>
public class OnnxPipelineTests
{
    public sealed class TwoPartRow
    {
        [VectorType(16)]
        public float[] A { get; set; } = [];

        [VectorType(16)]
        public float[] B { get; set; } = [];
    }

    /// <summary>
    /// ML.NET's converter walks a chain back through IDataTransform views that implement its internal
    /// ITransformCanSaveOnnx; the VAE's view is neither, so the walk stops there and every column of the scored view,
    /// the VAE's outputs included, becomes a graph input. The file loads, but it does not compute the VAE (docs/onnx.md).
    /// </summary>
    [Fact]
    public void ConvertToOnnx_stops_at_the_VAE_and_asks_for_its_outputs_as_inputs()
    {
        var (ml, data, prep, vae) = Chain();
        using (vae)
        {
            using var folder = new ScratchDirectory();
            using (var file = File.Create(folder.File("whole.onnx")))
            {
                ml.Model.ConvertToOnnx(prep.Append(vae), data, file);
            }

            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(folder.File("whole.onnx"));
            session.InputNames.Should().Contain(["A", "B", "Z", "Anomaly"], "the VAE's outputs are not computed by the converted graph");
        }
    }

    /// <summary>What works instead: ConvertToOnnx for the chain before the VAE, ExportOnnx for the VAE, both served by ApplyOnnxModel.</summary>
    [Fact]
    public void The_chain_serves_from_two_ONNX_models_with_the_VAE_columns_of_the_libtorch_chain()
    {
        var (ml, data, prep, vae) = Chain();
        using (vae)
        {
            using var folder = new ScratchDirectory();
            using (var file = File.Create(folder.File("prep.onnx")))
            {
                ml.Model.ConvertToOnnx(prep, data, file);
            }

            vae.ExportOnnx(folder.File("vae.onnx"));
            var prepOnnx = ml.Transforms.ApplyOnnxModel(folder.File("prep.onnx")).Fit(data);
            var vaeOnnx = ml.Transforms.ApplyOnnxModel(folder.File("vae.onnx")).Fit(prepOnnx.Transform(data));
            var viaOnnx = prepOnnx.Append(vaeOnnx).Transform(data);
            var viaTorch = prep.Append(vae).Transform(data);

            foreach (var column in new[] { "Features", "Z", "LatentLogVariance", "Reconstruction" })
            {
                var onnx = viaOnnx.GetColumn<float[]>(column).SelectMany(r => r).ToArray();
                var torch = viaTorch.GetColumn<float[]>(column).SelectMany(r => r).ToArray();
                onnx.Should().HaveCount(200 * (column is "Z" or "LatentLogVariance" ? 3 : 32));
                OnnxAgreement.WorstRelativeError(onnx, torch, floor: 1).Should().BeLessThanOrEqualTo(OnnxAgreement.Tolerance, column);
            }

            var scores = viaOnnx.GetColumn<float[]>("Anomaly").Select(r => r.Single()).ToArray();
            OnnxAgreement.WorstRelativeError(scores, viaTorch.GetColumn<float>("Anomaly").ToArray(), floor: 1).Should().BeLessThanOrEqualTo(OnnxAgreement.Tolerance);
        }
    }

    /// <summary>The example chain: two raw columns → Concatenate → NormalizeMinMax (into [0, 1]) → VAE.</summary>
    private static (MLContext Ml, IDataView Data, ITransformer Prep, VaeTransformer Vae) Chain()
    {
        var ml = new MLContext(seed: 0);
        var random = new Random(4);
        var rows = Enumerable.Range(0, 200).Select(_ => new TwoPartRow
        {
            A = Enumerable.Range(0, 16).Select(_ => (float)random.NextDouble() * 10).ToArray(),
            B = Enumerable.Range(0, 16).Select(_ => (float)random.NextDouble() * 3 - 1).ToArray(),
        }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        var prep = ml.Transforms.Concatenate("Features", "A", "B").Append(ml.Transforms.NormalizeMinMax("Features", fixZero: false)).Fit(data);
        var options = PersistenceFixtures.SmallOptions(); // Latent "Z", Score "Anomaly"
        options.Epochs = 1;
        return (ml, data, prep, ml.Transforms.Vae(options).Fit(prep.Transform(data)));
    }
}
