using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Likelihood;

namespace Vae.ML.Tests.Reliability;

/// <summary>
/// One row is scored by a managed forward pass for MLPs (libtorch's fixed cost per call dominates a single row) and by
/// libtorch for convolutional networks. Either way it must give what the batched libtorch path gives, for every
/// architecture and likelihood, through the array API and the prediction engine, and NaN in must give NaN out.
/// </summary>
public class SingleRowScoringTests
{
    /// <summary>
    /// "Within 1e-5 relative", with a floor: |a − b| ≤ 1e-5 · max(|a|, |b|, 1). Latents and probabilities live near
    /// [−3, 3] and [0, 1], where a relative bound alone would demand exact zeros; there the bound is 1e-5 absolute.
    /// </summary>
    private const double Tolerance = 1e-5;

    private sealed class Prediction
    {
        public float[] Latent { get; set; } = [];

        public float[] LatentLogVariance { get; set; } = [];

        public float[] Reconstruction { get; set; } = [];

        public float Score { get; set; }
    }

    private sealed class LatentOnly
    {
        public float[] Latent { get; set; } = [];
    }

    private sealed class Input
    {
        public float[] Features { get; set; } = [];
    }

    public static TheoryData<string> Networks =>
        ["mlp-bernoulli", "mlp-bernoulli-two-hidden-layers-beta-0.5", "mlp-gaussian-standardized", "mlp-gaussian-raw", "conv-bernoulli", "conv-gaussian"];

    private static (VaeTransformer Vae, float[][] Rows) Train(MLContext ml, string network)
    {
        if (network == "mlp-gaussian-standardized")
        {
            // Features from 0.01 to 1000: standardized, the network sees unit scale; outputs come back in raw units.
            var options = ManifoldData.Options(epochs: 4);
            var data = ManifoldData.Rows(200, seed: 1);
            var probe = ManifoldData.Rows(30, seed: 2);
            return (ml.Transforms.Vae(options).Fit(ManifoldData.Load(ml, data)), probe.Select(r => r.Features).ToArray());
        }

        var conv = network.StartsWith("conv", StringComparison.Ordinal);
        var vaeOptions = new VaeOptions
        {
            Architecture = conv ? VaeArchitecture.Convolutional : VaeArchitecture.Mlp,
            ImageShape = conv ? [1, 8, 8] : null,
            HiddenSizes = network.Contains("two-hidden", StringComparison.Ordinal) ? [24, 12] : [16],
            Beta = network.Contains("beta-0.5", StringComparison.Ordinal) ? 0.5 : 1.0,
            Likelihood = network.Contains("gaussian", StringComparison.Ordinal) ? VaeLikelihood.Gaussian : VaeLikelihood.Bernoulli,

            // Unstandardized Gaussian features go into the network as they are: on [0, 1] here, because on the manifold's
            // raw scale (up to 1000) float rounding of the batched path itself exceeds 1e-5 of the latents.
            StandardizeFeatures = network != "mlp-gaussian-raw",
            Epochs = 3,
            BatchSize = 32,
            Seed = 5,
            Device = "cpu",
        };
        var rows = SyntheticData.Rows(30, seed: 9).Select(r => r.Features).ToArray();
        return (ml.Transforms.Vae(vaeOptions).Fit(SyntheticData.Load(ml, 256)), rows);
    }

    private static void ShouldMatch(ReadOnlySpan<float> single, ReadOnlySpan<float> batched, string what)
    {
        single.Length.Should().Be(batched.Length, what);
        for (var i = 0; i < single.Length; i++)
        {
            double a = single[i], b = batched[i];
            var bound = Tolerance * Math.Max(1, Math.Max(Math.Abs(a), Math.Abs(b)));
            Math.Abs(a - b).Should().BeLessThanOrEqualTo(bound, $"{what}, value {i}: one row gives {a:R}, the batch {b:R}");
        }
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void One_row_matches_the_batched_libtorch_path_through_the_array_API_and_the_prediction_engine(string network)
    {
        var ml = new MLContext(seed: 0);
        var (vae, rows) = Train(ml, network);
        using (vae)
        {
            vae.Model.ScoresSingleRowsManaged.Should().Be(network.StartsWith("mlp", StringComparison.Ordinal), "MLPs have a managed single-row path; convolutional networks stay on libtorch");
            var width = vae.InputSize;
            var d = vae.LatentDimension;
            var matrix = rows.SelectMany(r => r).ToArray();
            var mu = vae.Encode(matrix, out var logVariance);
            var reconstruction = vae.Reconstruct(matrix);
            var score = vae.Score(matrix);

            var input = SchemaDefinition.Create(typeof(Input));
            input[nameof(Input.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
            var output = SchemaDefinition.Create(typeof(Prediction));
            output[nameof(Prediction.Latent)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, d);
            output[nameof(Prediction.LatentLogVariance)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, d);
            output[nameof(Prediction.Reconstruction)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
            using var engine = ml.Model.CreatePredictionEngine<Input, Prediction>(vae, new PredictionEngineOptions
            {
                OwnsTransformer = false,
                InputSchemaDefinition = input,
                OutputSchemaDefinition = output,
            });
            for (var r = 0; r < rows.Length; r++)
            {
                var what = $"{network}, row {r}";
                var oneMu = vae.Encode(rows[r], out var oneLogVariance);
                ShouldMatch(oneMu, mu.AsSpan(r * d, d), $"{what}: Encode μ");
                ShouldMatch(oneLogVariance, logVariance.AsSpan(r * d, d), $"{what}: Encode log σ²");
                ShouldMatch(vae.Reconstruct(rows[r]), reconstruction.AsSpan(r * width, width), $"{what}: Reconstruct");
                ShouldMatch(vae.Score(rows[r]), score.AsSpan(r, 1), $"{what}: Score");

                var prediction = engine.Predict(new Input { Features = rows[r] });
                prediction.Latent.Should().Equal(oneMu, "the engine and a one-row array call take the same path");
                prediction.LatentLogVariance.Should().Equal(oneLogVariance);
                prediction.Reconstruction.Should().Equal(vae.Reconstruct(rows[r]));
                prediction.Score.Should().Be(vae.Score(rows[r])[0]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void One_row_with_NaN_or_infinity_gives_NaN_outputs_and_the_next_row_is_unaffected(string network)
    {
        var ml = new MLContext(seed: 0);
        var (vae, rows) = Train(ml, network);
        using (vae)
        {
            var before = vae.Score(rows[0]);
            foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            {
                var row = rows[1].ToArray();
                row[3] = bad;
                vae.Encode(row, out var logVariance).Should().OnlyContain(v => float.IsNaN(v), $"{network}, {bad}");
                logVariance.Should().OnlyContain(v => float.IsNaN(v));
                vae.Reconstruct(row).Should().OnlyContain(v => float.IsNaN(v));
                vae.Score(row).Should().ContainSingle().Which.Should().Be(float.NaN);
                vae.Score(rows[0]).Should().Equal(before, "an odd row leaves nothing behind");
            }
        }
    }

    [Fact]
    public void The_managed_single_row_path_counts_its_encoder_and_decoder_passes()
    {
        var ml = new MLContext(seed: 0);
        var (vae, rows) = Train(ml, "mlp-bernoulli");
        using (vae)
        {
            vae.Model.ScoresSingleRowsManaged.Should().BeTrue();
            var (encoder, decoder) = (vae.Model.EncoderPasses, vae.Model.DecoderPasses);
            foreach (var row in rows)
            {
                vae.Score(row);
                vae.Encode(row);
            }

            (vae.Model.EncoderPasses - encoder, vae.Model.DecoderPasses - decoder).Should().Be((2L * rows.Length, (long)rows.Length),
                "each Score runs the encoder and the decoder once, each Encode the encoder only");
        }
    }

    [Fact]
    public void A_prediction_engine_reading_only_Latent_runs_no_decoder()
    {
        // ML.NET's engine declares every output column active; only the ones it reads may be computed.
        var ml = new MLContext(seed: 0);
        var (vae, rows) = Train(ml, "mlp-bernoulli");
        using (vae)
        {
            var input = SchemaDefinition.Create(typeof(Input));
            input[nameof(Input.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, vae.InputSize);
            var output = SchemaDefinition.Create(typeof(LatentOnly));
            output[nameof(LatentOnly.Latent)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, vae.LatentDimension);
            using var engine = ml.Model.CreatePredictionEngine<Input, LatentOnly>(vae, new PredictionEngineOptions
            {
                OwnsTransformer = false,
                InputSchemaDefinition = input,
                OutputSchemaDefinition = output,
            });
            var (encoder, decoder) = (vae.Model.EncoderPasses, vae.Model.DecoderPasses);
            foreach (var row in rows)
            {
                engine.Predict(new Input { Features = row }).Latent.Should().Equal(vae.Encode(row));
            }

            (vae.Model.EncoderPasses - encoder, vae.Model.DecoderPasses - decoder).Should().Be((2L * rows.Length, 0L),
                "each Predict and each Encode runs the encoder once, and nothing asked for the decoder");
        }
    }
}
