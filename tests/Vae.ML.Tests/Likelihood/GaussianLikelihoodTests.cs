using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Vae.ML.Tests.Likelihood;

public class GaussianLikelihoodTests
{
    /// <summary>Area under the ROC curve of <paramref name="scores"/> ranking positives above negatives (ties count ½).</summary>
    private static double Auroc(float[] scores, bool[] positive)
    {
        double wins = 0;
        long pairs = 0;
        for (var i = 0; i < scores.Length; i++)
        {
            if (!positive[i])
            {
                continue;
            }

            for (var j = 0; j < scores.Length; j++)
            {
                if (positive[j])
                {
                    continue;
                }

                pairs++;
                wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
            }
        }

        return wins / pairs;
    }

    [Fact]
    public void On_a_noisy_2D_manifold_in_20D_the_loss_falls_the_latent_recovers_it_and_outliers_score_highest()
    {
        var ml = new MLContext(seed: 0);
        var train = ManifoldData.Rows(1000, seed: 1);
        using var vae = ml.Transforms.Vae(ManifoldData.Options()).Fit(ManifoldData.Load(ml, train));

        vae.Likelihood.Should().Be(VaeLikelihood.Gaussian);
        vae.History[^1].TrainLoss.Should().BeLessThan(vae.History[0].TrainLoss - 20, "the negative ELBO (nats per row) falls");
        vae.History.Should().OnlyContain(h => double.IsFinite(h.TrainLoss));

        // The latent keeps the manifold's neighbourhoods: a row's nearest neighbour in latent space is close in t.
        var test = ManifoldData.Rows(400, seed: 2, outliers: 20);
        var inliers = test.Where(r => !r.Outlier).ToArray();
        var z = vae.Encode(ManifoldData.Matrix(inliers));
        double neighbourGap = 0, randomGap = 0;
        for (var i = 0; i < inliers.Length; i++)
        {
            var nearest = Enumerable.Range(0, inliers.Length).Where(j => j != i)
                .MinBy(j => Math.Pow(z[2 * i] - z[2 * j], 2) + Math.Pow(z[2 * i + 1] - z[2 * j + 1], 2));
            double Gap(int j) => Math.Sqrt(Math.Pow(inliers[i].T1 - inliers[j].T1, 2) + Math.Pow(inliers[i].T2 - inliers[j].T2, 2));
            neighbourGap += Gap(nearest);
            randomGap += Gap((i + 1 + i * 7 % (inliers.Length - 1)) % inliers.Length);
        }

        (neighbourGap / randomGap).Should().BeLessThan(0.2, "latent neighbours are manifold neighbours (random pairs are ~2 units apart)");

        // Reconstructions come back in raw units: errors are a small fraction of each feature's scale.
        var reconstruction = vae.Reconstruct(ManifoldData.Matrix(inliers));
        for (var i = 0; i < ManifoldData.Width; i++)
        {
            var error = inliers.Select((r, row) => Math.Abs(reconstruction[row * ManifoldData.Width + i] - r.Features[i])).Average();
            error.Should().BeLessThan((float)(0.3 * ManifoldData.Scale(i)), $"feature {i} is reconstructed in its own units");
        }

        // Scores through Transform rank every injected outlier above the inliers.
        var scores = vae.Transform(ManifoldData.Load(ml, test)).GetColumn<float>("Score").ToArray();
        scores.Should().OnlyContain(s => float.IsFinite(s));
        Auroc(scores, test.Select(r => r.Outlier).ToArray()).Should().BeGreaterThan(0.98);
    }

    [Fact]
    public void Score_is_the_density_of_the_raw_row_so_rescaled_data_shifts_it_by_the_log_of_the_scale()
    {
        // Standardization makes both trainings see the same numbers (up to rounding); the raw-unit density of data
        // scaled by 10 is lower by 20 · ln 10 per row. A score in standardized units would not change at all.
        var ml = new MLContext(seed: 0);
        using var plain = ml.Transforms.Vae(ManifoldData.Options(epochs: 10)).Fit(ManifoldData.Load(ml, ManifoldData.Rows(500, seed: 1)));
        using var scaled = ml.Transforms.Vae(ManifoldData.Options(epochs: 10)).Fit(ManifoldData.Load(ml, ManifoldData.Rows(500, seed: 1, scaleAll: 10)));

        var probe = ManifoldData.Rows(100, seed: 2);
        var plainScores = plain.Score(ManifoldData.Matrix(probe));
        var scaledScores = scaled.Score(ManifoldData.Matrix(ManifoldData.Rows(100, seed: 2, scaleAll: 10)));
        var shift = scaledScores.Zip(plainScores, (a, b) => (double)a - b).Average();
        shift.Should().BeApproximately(ManifoldData.Width * Math.Log(10), 0.5);
        scaled.History[^1].TrainLoss.Should().BeApproximately(plain.History[^1].TrainLoss + ManifoldData.Width * Math.Log(10), 0.5);
    }

    private sealed class Wide
    {
        [VectorType(5)]
        public float[] Features { get; set; } = [];
    }

    [Fact]
    public void Constant_and_huge_valued_columns_train_and_score_without_NaN()
    {
        var ml = new MLContext(seed: 0);
        var random = new Random(4);
        Wide Make()
        {
            var t = random.NextDouble() * 2 - 1;
            return new Wide
            {
                Features =
                [
                    5f,                                            // constant
                    0f,                                            // constant zero
                    (float)(3e7 + 1e6 * t),                        // huge values
                    (float)(-1e-3 * t + 1e-5 * random.NextDouble()), // tiny values
                    (float)(t + 0.05 * random.NextDouble()),
                ],
            };
        }

        var rows = Enumerable.Range(0, 300).Select(_ => Make()).ToArray();
        var options = ManifoldData.Options(epochs: 40);
        options.LatentDimension = 1;
        using var vae = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(rows));

        vae.History.Should().OnlyContain(h => double.IsFinite(h.TrainLoss) && double.IsFinite(h.TrainReconstructionLoss));
        var (mean, std) = vae.Standardization!.Value;
        std[0].Should().Be(1f, "a constant feature is only centred");
        std[1].Should().Be(1f);
        mean[0].Should().Be(5f);
        std[2].Should().BeApproximately(1e6f / MathF.Sqrt(3), 3e4f);

        var inputs = rows.Take(50).SelectMany(r => r.Features).ToArray();
        var scores = vae.Score(inputs);
        scores.Should().OnlyContain(s => float.IsFinite(s));
        var reconstruction = vae.Reconstruct(inputs);
        reconstruction.Should().OnlyContain(v => float.IsFinite(v));
        for (var row = 0; row < 50; row++)
        {
            reconstruction[row * 5].Should().BeApproximately(5f, 0.2f);
            reconstruction[row * 5 + 2].Should().BeApproximately(inputs[row * 5 + 2], 3e5f, "huge values come back in their own units");
        }

        // A row that breaks the constant is scored finite and above the same row unbroken: its standardized value 1
        // lies where the decoder predicts 0 with σ² ≤ 1 (the learned log σ² starts at 0 and only falls), ≥ 0.5 nats more.
        var odd = (float[])inputs[..5].Clone();
        odd[0] = 6f;
        var oddScore = vae.Score(odd)[0];
        float.IsFinite(oddScore).Should().BeTrue();
        oddScore.Should().BeGreaterThan(scores[0] + 0.45f);
    }

    [Fact]
    public void Streamed_training_data_gets_the_same_standardization_as_data_in_memory()
    {
        var ml = new MLContext(seed: 0);
        var data = ManifoldData.Load(ml, ManifoldData.Rows(300, seed: 1));
        using var inMemory = ml.Transforms.Vae(ManifoldData.Options(epochs: 2)).Fit(data);
        var options = ManifoldData.Options(epochs: 2);
        options.MaxInMemoryBytes = 0;
        using var streamed = ml.Transforms.Vae(options).Fit(data);

        streamed.Standardization!.Value.Mean.Should().Equal(inMemory.Standardization!.Value.Mean);
        streamed.Standardization!.Value.Std.Should().Equal(inMemory.Standardization!.Value.Std);
        streamed.History.Should().OnlyContain(h => double.IsFinite(h.TrainLoss));
    }

    [Fact]
    public void Without_standardization_the_model_sees_the_values_as_given()
    {
        var ml = new MLContext(seed: 0);
        var rows = ManifoldData.Rows(300, seed: 1).Select(r => new ManifoldData.Row { Features = r.Features.Select((v, i) => v / (float)ManifoldData.Scale(i)).ToArray() }).ToArray();
        var options = ManifoldData.Options(epochs: 10);
        options.StandardizeFeatures = false;
        using var vae = ml.Transforms.Vae(options).Fit(ManifoldData.Load(ml, rows));

        var (mean, std) = vae.Standardization!.Value;
        mean.Should().OnlyContain(m => m == 0f);
        std.Should().OnlyContain(s => s == 1f);
        vae.History[^1].TrainLoss.Should().BeLessThan(vae.History[0].TrainLoss);
        vae.Score(ManifoldData.Matrix(rows.Take(10).ToArray())).Should().OnlyContain(s => float.IsFinite(s));
    }

    [Fact]
    public void Bernoulli_keeps_its_range_check_and_points_to_the_Gaussian_likelihood_which_needs_only_finite_values()
    {
        var ml = new MLContext(seed: 0);
        var rows = ManifoldData.Rows(64, seed: 1);
        var bernoulli = ManifoldData.Options(epochs: 1);
        bernoulli.Likelihood = VaeLikelihood.Bernoulli;
        FluentActions.Invoking(() => ml.Transforms.Vae(bernoulli).Fit(ManifoldData.Load(ml, rows)))
            .Should().Throw<ArgumentException>().WithMessage("*row 0, element *outside [0, 1]*VaeLikelihood.Gaussian*");

        rows[10].Features[3] = float.NaN;
        FluentActions.Invoking(() => ml.Transforms.Vae(ManifoldData.Options(epochs: 1)).Fit(ManifoldData.Load(ml, rows)))
            .Should().Throw<ArgumentException>().WithMessage("Training data, column 'Features', row 10, element 3: the value is NaN*");

        var undefined = ManifoldData.Options();
        undefined.Likelihood = (VaeLikelihood)7;
        FluentActions.Invoking(() => ml.Transforms.Vae(undefined)).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("Likelihood");
    }

    [Fact]
    public void Scoring_raw_values_warns_of_nothing_and_a_NaN_row_gives_NaN_outputs()
    {
        var ml = new MLContext(seed: 0);
        var warnings = new List<string>();
        ml.Log += (_, e) =>
        {
            if (e.Kind == ChannelMessageKind.Warning && e.Message.Contains("VAE scoring", StringComparison.Ordinal))
            {
                warnings.Add(e.Message);
            }
        };
        var rows = ManifoldData.Rows(200, seed: 1);
        using var vae = ml.Transforms.Vae(ManifoldData.Options(epochs: 3)).Fit(ManifoldData.Load(ml, rows));

        var probe = ManifoldData.Rows(5, seed: 2);
        probe[2].Features[0] = float.NaN;
        var scored = vae.Transform(ManifoldData.Load(ml, probe));
        var scores = scored.GetColumn<float>("Score").ToArray();
        var reconstructions = scored.GetColumn<float[]>("Reconstruction").ToArray();

        float.IsNaN(scores[2]).Should().BeTrue();
        reconstructions[2].Should().OnlyContain(v => float.IsNaN(v));
        scores.Where((_, i) => i != 2).Should().OnlyContain(s => float.IsFinite(s));
        warnings.Should().NotContain(w => w.Contains("outside [0, 1]", StringComparison.Ordinal), "values outside [0, 1] are ordinary for the Gaussian likelihood");
    }

    [Fact]
    public void Decode_and_Sample_return_raw_unit_means()
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(ManifoldData.Options(epochs: 10)).Fit(ManifoldData.Load(ml, ManifoldData.Rows(500, seed: 1)));

        var samples = vae.Sample(200, seed: 9);
        var (mean, std) = vae.Standardization!.Value;
        for (var i = 0; i < ManifoldData.Width; i++)
        {
            var values = Enumerable.Range(0, 200).Select(r => (double)samples[r * ManifoldData.Width + i]).ToArray();
            Math.Abs(values.Average() - mean[i]).Should().BeLessThan(1.0 * std[i], $"feature {i} is sampled around its raw mean");
        }

        var decoded = vae.Decode(vae.Encode(ManifoldData.Matrix(ManifoldData.Rows(3, seed: 5))));
        decoded.Should().Equal(vae.Reconstruct(ManifoldData.Matrix(ManifoldData.Rows(3, seed: 5))));
    }
}
