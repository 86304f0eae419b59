using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Torch;

namespace Vae.ML.Tests.Expectations;

/// <summary>
/// Loss, Score and the encoder against <see cref="ReferenceVae"/>, a direct double-precision computation from the
/// formulas. Tolerance: the library computes in float32 (relative rounding 6e-8 per operation); sums over at most a few
/// hundred terms stay within 1e-5 relative, far below any real mistake (a missing β, a swapped layer, a lost row).
/// </summary>
public class LossExpectationTests
{
    private const double Relative = 1e-5;

    private static float[] Inputs(int rows, int width, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows * width];
        for (var i = 0; i < values.Length; i++)
        {
            // Includes exact 0 and 1, as binarised images have.
            values[i] = (i % 7) switch { 0 => 0f, 1 => 1f, _ => (float)random.NextDouble() };
        }

        return values;
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(4.0)]
    public void Score_is_bce_plus_beta_times_kl_of_each_row(double beta)
    {
        const int width = 6, rows = 5;
        using var vae = ReferenceVae.KnownWeights(width, [4, 3], latentDimension: 2, beta);
        var reference = new ReferenceVae(vae.Model.GetParameters());
        var x = Inputs(rows, width, seed: 1);

        var scores = vae.Score(x);

        scores.Should().HaveCount(rows);
        for (var r = 0; r < rows; r++)
        {
            var (bce, kl) = reference.LossAtMean(x.AsSpan(r * width, width));
            kl.Should().BeGreaterThan(0.05, "the known weights must give the KL term weight in this test");
            ((double)scores[r]).Should().BeApproximately(bce + beta * kl, Relative * (bce + beta * kl), $"row {r}, β = {beta}");
        }
    }

    [Fact]
    public void Encoder_gives_mu_from_fc21_and_log_variance_from_fc22_and_the_decoder_sigmoid_of_fc4()
    {
        const int width = 6, rows = 4;
        using var vae = ReferenceVae.KnownWeights(width, [5], latentDimension: 3, beta: 1);
        var reference = new ReferenceVae(vae.Model.GetParameters());
        var x = Inputs(rows, width, seed: 2);

        var mu = vae.Encode(x, out var logVar);
        var reconstruction = vae.Reconstruct(x);

        for (var r = 0; r < rows; r++)
        {
            var (expectedMu, expectedLogVar) = reference.Encode(x.AsSpan(r * width, width));
            var expectedRecon = reference.DecodeLogits(expectedMu).Select(ReferenceVae.Sigmoid).ToArray();
            for (var k = 0; k < 3; k++)
            {
                ((double)mu[r * 3 + k]).Should().BeApproximately(expectedMu[k], 1e-5, $"μ[{r},{k}] is fc21's output");
                ((double)logVar[r * 3 + k]).Should().BeApproximately(expectedLogVar[k], 1e-5, $"log σ²[{r},{k}] is fc22's output");
            }

            for (var j = 0; j < width; j++)
            {
                ((double)reconstruction[r * width + j]).Should().BeApproximately(expectedRecon[j], 1e-6);
            }
        }
    }

    [Fact]
    public void Score_column_of_a_pipeline_equals_the_direct_computation()
    {
        const int width = 6;
        using var vae = ReferenceVae.KnownWeights(width, [4], latentDimension: 2, beta: 4);
        var reference = new ReferenceVae(vae.Model.GetParameters());
        var x = Inputs(3, width, seed: 3);
        var ml = new MLContext(seed: 0);
        var definition = SchemaDefinition.Create(typeof(Row));
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 3).Select(r => new Row { Features = x[(r * width)..((r + 1) * width)] }), definition);

        var scores = vae.Transform(data).GetColumn<float>("Score").ToArray();

        scores.Should().HaveCount(3);
        for (var r = 0; r < 3; r++)
        {
            var (bce, kl) = reference.LossAtMean(x.AsSpan(r * width, width));
            ((double)scores[r]).Should().BeApproximately(bce + 4 * kl, Relative * (bce + 4 * kl));
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(4.0)]
    public void Batch_loss_sums_bce_and_beta_times_kl_over_the_batch(double beta)
    {
        const int width = 6, rows = 5;
        using var vae = ReferenceVae.KnownWeights(width, [4], latentDimension: 2, beta);
        var reference = new ReferenceVae(vae.Model.GetParameters());
        var x = Inputs(rows, width, seed: 4);
        var (expectedBce, expectedKl) = (0.0, 0.0);
        for (var r = 0; r < rows; r++)
        {
            var (bce, kl) = reference.LossAtMean(x.AsSpan(r * width, width));
            expectedBce += bce;
            expectedKl += kl;
        }

        using var scope = TorchSharp.torch.NewDisposeScope();
        using var noGrad = TorchSharp.torch.no_grad();
        var input = vae.Model.ToDevice(x, rows, width);
        var (mu, logVar) = vae.Model.Network.Encode(input);
        var (total, reconstruction, klTerm) = VaeLoss.Batch(vae.Model.Network.DecodeLogits(mu), input, mu, logVar, beta);

        ((double)reconstruction.item<float>()).Should().BeApproximately(expectedBce, Relative * expectedBce);
        ((double)klTerm.item<float>()).Should().BeApproximately(expectedKl, Relative * expectedKl);
        ((double)total.item<float>()).Should().BeApproximately(expectedBce + beta * expectedKl, Relative * (expectedBce + beta * expectedKl));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(4.0)]
    public void Trained_model_reports_losses_that_match_the_formulas(double beta)
    {
        var ml = new MLContext(seed: 0);
        var validationRows = SyntheticData.Rows(50, seed: 2);
        var options = new VaeOptions
        {
            HiddenSizes = [16], LatentDimension = 2, Epochs = 2, BatchSize = 32, Seed = 5, Device = "cpu", Beta = beta,
            ValidationData = ml.Data.LoadFromEnumerable(validationRows),
        };

        using var vae = ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 200));

        vae.Beta.Should().Be(beta);
        var reference = new ReferenceVae(vae.Model.GetParameters());
        var atMean = validationRows.Average(row =>
        {
            var (bce, kl) = reference.LossAtMean(row.Features);
            return bce + beta * kl;
        });
        var last = vae.History[^1];
        last.ValidationLossAtMean!.Value.Should().BeApproximately(atMean, Relative * atMean, "validation at z = μ is the per-image BCE + β·KL");
        foreach (var epoch in vae.History)
        {
            var expected = epoch.TrainReconstructionLoss + beta * epoch.TrainKlDivergence;
            epoch.TrainLoss.Should().BeApproximately(expected, Relative * expected, $"epoch {epoch.Epoch}: the loss is BCE + β·KL with β = {beta}");
            // The check can fail: a β off by one changes the loss by KL, far more than the tolerance.
            epoch.TrainKlDivergence.Should().BeGreaterThan(10 * Relative * epoch.TrainLoss);
        }
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
    }
}
