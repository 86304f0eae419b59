using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Datasets;
using Vae.ML.Tests.Datasets;

namespace Vae.ML.Tests.Core;

/// <summary>The report's network on a real MNIST subset (a few thousand images, two epochs).</summary>
[Collection(MnistCollection.Name)]
public class VaeMnistTests(MnistDataFixture mnist)
{
    [Fact]
    public void Report_network_learns_MNIST_and_Score_is_the_per_image_loss_at_the_mean()
    {
        var ml = new MLContext(seed: 0);
        var train = mnist.Train.Take(3000).ToDataView(ml);
        var test = mnist.Test.Take(1000);
        var options = new VaeOptions { Epochs = 2, Seed = 0, Device = "cpu", ValidationData = test.ToDataView(ml) };

        using var vae = ml.Transforms.Vae(options).Fit(train);

        vae.InputSize.Should().Be(784);
        vae.HiddenSizes.Should().Equal(400);
        var (first, last) = (vae.History[0], vae.History[^1]);
        last.TrainLoss.Should().BeLessThan(first.TrainLoss);
        last.ValidationLoss.Should().BeLessThan(first.ValidationLoss!.Value);

        // A network that outputs 0.5 everywhere loses 784·ln 2 ≈ 543.4 nats per image; two short epochs give far less.
        last.ValidationLoss!.Value.Should().BeLessThan(0.5 * 784 * Math.Log(2));
        var reference = new Expectations.ReferenceVae(vae.Model.GetParameters());
        var expectedAtMean = Enumerable.Range(0, test.Count)
            .Average(i => reference.LossAtMean(test.GetImage(i)) is var (bce, kl) ? bce + kl : 0);
        last.ValidationLossAtMean!.Value.Should().BeApproximately(expectedAtMean, 1e-5 * expectedAtMean);

        var scored = vae.Transform(test.ToDataView(ml));
        var scores = scored.GetColumn<float>(vae.ScoreColumnName).ToArray();
        ((double)scores.Average()).Should().BeApproximately(last.ValidationLossAtMean!.Value, 1e-3 * last.ValidationLossAtMean.Value);
        scored.Schema["Reconstruction"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 784));
    }
}
