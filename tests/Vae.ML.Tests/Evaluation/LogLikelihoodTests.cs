using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Datasets;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Datasets;
using Vae.ML.Tests.Likelihood;
using Vae.ML.Tests.Persistence;
using Xunit.Abstractions;

namespace Vae.ML.Tests.Evaluation;

/// <summary>
/// <see cref="VaeTransformer.LogLikelihood"/>, the IWAE estimate of log p(x): its properties, its input checks, and
/// agreement with an independent PyTorch computation on the same exported weights.
/// </summary>
[Collection(MnistCollection.Name)]
public class LogLikelihoodTests(MnistDataFixture mnist, ITestOutputHelper output)
{
    // Two estimates of the same quantity from different noise: the per-row IWAE estimate with k = 50 varies by well
    // under a nat on these models, so the means over 200 rows differ by a few hundredths; 0.2 nat is the brief's bound.
    private const double CrossCheckTolerance = 0.2;

    private static VaeTransformer TrainOnMnist(MLContext ml, MnistImages train, VaeOptions? options = null)
        => ml.Transforms.Vae(options ?? new VaeOptions { Epochs = 2, BatchSize = 64, Seed = 0, Device = "cpu" }).Fit(train.ToDataView(ml));

    [Fact]
    public void The_estimate_is_a_negative_log_likelihood_that_tightens_with_more_samples_and_repeats_with_a_seed()
    {
        var ml = new MLContext(seed: 0);
        using var vae = TrainOnMnist(ml, mnist.Train.Take(1000));
        var test = mnist.Test.Take(200).ToDataView(ml);

        double k1 = vae.LogLikelihood(test, samples: 1, seed: 5);
        double k50 = vae.LogLikelihood(test, samples: 50, seed: 5);
        output.WriteLine($"log p(x): k=1 {k1:F3}, k=50 {k50:F3}");

        k1.Should().BeNegative("a Bernoulli likelihood of 784 pixels is far below 1");
        k50.Should().BeGreaterThan(k1, "the IWAE bound with 50 samples is tighter than the one-sample ELBO");
        vae.LogLikelihood(test, samples: 50, seed: 5).Should().Be(k50, "the same seed draws the same samples");
        vae.LogLikelihood(test, samples: 50, seed: 6).Should().NotBe(k50);
        // k = 1 is a one-sample ELBO: close to minus the loss at z = μ (the Score column), measured 0.7 nat apart here.
        var elboAtMean = -vae.Score(mnist.Test.Take(200).Pixels).Average(s => (double)s);
        k1.Should().BeApproximately(elboAtMean, 5);
    }

    [Fact]
    public void Per_row_estimates_come_in_row_order_and_average_to_the_mean()
    {
        var ml = new MLContext(seed: 0);
        using var vae = TrainOnMnist(ml, mnist.Train.Take(500));
        var rows = mnist.Test.Take(300);
        var perRow = vae.LogLikelihoodPerRow(rows.ToDataView(ml), samples: 5, seed: 2);
        perRow.Should().HaveCount(300).And.OnlyContain(v => double.IsFinite(v) && v < 0);
        vae.LogLikelihood(rows.ToDataView(ml), samples: 5, seed: 2).Should().BeApproximately(perRow.Average(), 1e-9);
    }

    [Fact]
    public void Bad_arguments_and_rows_are_refused_with_what_was_expected()
    {
        var ml = new MLContext(seed: 0);
        using var vae = TrainOnMnist(ml, mnist.Train.Take(256), new VaeOptions { Epochs = 1, Seed = 0, Device = "cpu" });
        var data = mnist.Test.Take(10).ToDataView(ml);

        vae.Invoking(v => v.LogLikelihood(data, samples: 0)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("samples");
        vae.Invoking(v => v.LogLikelihood(mnist.Test.Take(0).ToDataView(ml))).Should().Throw<ArgumentException>().WithMessage("*no rows*");

        var wrongWidth = ml.Data.LoadFromEnumerable(SyntheticData.Rows(4, width: 20), SchemaFor(ml, 20));
        vae.Invoking(v => v.LogLikelihood(wrongWidth)).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*Features*20*784*");

        var rows = SyntheticData.Rows(4, width: 784);
        rows[2].Features[7] = float.NaN;
        var withNaN = ml.Data.LoadFromEnumerable(rows, SchemaFor(ml, 784));
        vae.Invoking(v => v.LogLikelihood(withNaN)).Should().Throw<ArgumentException>().WithMessage("*row 2*");
    }

    [Fact]
    public void A_convolutional_VAE_has_an_estimate_too()
    {
        var ml = new MLContext(seed: 0);
        var options = new VaeOptions
        {
            Architecture = VaeArchitecture.Convolutional, ImageShape = [1, 28, 28], HiddenSizes = [16], LatentDimension = 4,
            Epochs = 1, BatchSize = 32, Seed = 1, Device = "cpu",
        };
        using var vae = TrainOnMnist(ml, mnist.Train.Take(200), options);
        var test = mnist.Test.Take(40).ToDataView(ml);
        double k1 = vae.LogLikelihood(test, samples: 1, seed: 1), k20 = vae.LogLikelihood(test, samples: 20, seed: 1);
        output.WriteLine($"conv: k=1 {k1:F3}, k=20 {k20:F3}");
        k1.Should().BeNegative();
        k20.Should().BeGreaterThan(k1);
    }

    [PyTorchFact]
    public void Bernoulli_estimate_matches_PyTorch_on_the_same_weights()
    {
        var ml = new MLContext(seed: 0);
        using var vae = TrainOnMnist(ml, mnist.Train.Take(1000));
        var test = mnist.Test.Take(200);
        double ours = vae.LogLikelihood(test.ToDataView(ml), samples: 50, seed: 1);
        double theirs = PyTorchEstimate(vae, test.Pixels, samples: 50);
        output.WriteLine($"MNIST slice, k=50: Vae.ML {ours:F4}, PyTorch {theirs:F4}");
        ours.Should().BeApproximately(theirs, CrossCheckTolerance);
    }

    [PyTorchFact]
    public void Gaussian_estimate_matches_PyTorch_on_the_same_weights()
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(ManifoldData.Options(epochs: 10)).Fit(ManifoldData.Load(ml, ManifoldData.Rows(512, seed: 1)));
        var test = ManifoldData.Rows(200, seed: 9);
        double ours = vae.LogLikelihood(ManifoldData.Load(ml, test), samples: 50, seed: 1);
        double theirs = PyTorchEstimate(vae, ManifoldData.Matrix(test), samples: 50);
        output.WriteLine($"Gaussian manifold, k=50: Vae.ML {ours:F4}, PyTorch {theirs:F4}");
        ours.Should().BeApproximately(theirs, CrossCheckTolerance);
    }

    private static SchemaDefinition SchemaFor(MLContext ml, int width)
    {
        var definition = SchemaDefinition.Create(typeof(SyntheticData.Row));
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        return definition;
    }

    private static double PyTorchEstimate(VaeTransformer vae, float[] inputs, int samples)
    {
        using var scratch = new ScratchDirectory();
        var weights = scratch.File("vae.safetensors");
        vae.ExportSafetensors(weights);
        return global::Vae.ML.Samples.Experiments.PyTorchIwae.LogLikelihood(PyTorchFactAttribute.Python, weights, inputs, samples, seed: 0);
    }
}
