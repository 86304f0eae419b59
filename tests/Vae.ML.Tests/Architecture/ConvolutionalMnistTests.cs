using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Datasets;
using Vae.ML.Tests.Persistence;

namespace Vae.ML.Tests.Architecture;

/// <summary>The convolutional VAE on a real MNIST subset: shapes, learning, and a save/load round trip.</summary>
[Collection(MnistCollection.Name)]
public class ConvolutionalMnistTests(MnistDataFixture mnist)
{
    private static VaeOptions Options(IDataView? validation) => new()
    {
        Architecture = VaeArchitecture.Convolutional,
        ImageShape = [1, 28, 28],
        HiddenSizes = [16], // the Keras example's dense layer
        LatentDimension = 2,
        Epochs = 3,
        BatchSize = 64,
        Seed = 0,
        Device = "cpu",
        ValidationData = validation,
    };

    [Fact]
    public void Convolutional_VAE_learns_MNIST_keeps_flat_columns_and_survives_save_and_load()
    {
        var ml = new MLContext(seed: 0);
        var train = mnist.Train.Take(600).ToDataView(ml);
        var test = mnist.Test.Take(200);

        using var vae = ml.Transforms.Vae(Options(test.ToDataView(ml))).Fit(train);

        vae.Architecture.Should().Be(VaeArchitecture.Convolutional);
        vae.ImageShape.Should().Equal(1, 28, 28);
        vae.InputSize.Should().Be(784);
        vae.History.Should().HaveCount(3);
        var (first, last) = (vae.History[0], vae.History[^1]);
        last.TrainLoss.Should().BeLessThan(first.TrainLoss);
        last.ValidationLoss.Should().BeLessThan(first.ValidationLoss!.Value);
        last.ValidationLoss!.Value.Should().BeLessThan(543, "an untrained decoder's BCE is ≈ 784·ln 2 = 543 nats");

        // The columns stay flat vectors; the network reshapes inside.
        var scored = vae.Transform(test.ToDataView(ml));
        scored.Schema[vae.LatentColumnName].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 2));
        scored.Schema[vae.ReconstructionColumnName].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 784));
        var reconstructions = scored.GetColumn<float[]>(vae.ReconstructionColumnName).ToArray();
        reconstructions.Should().HaveCount(200).And.OnlyContain(r => r.Length == 784 && r.All(p => p >= 0 && p <= 1));
        var scores = scored.GetColumn<float>(vae.ScoreColumnName).ToArray();
        ((double)scores.Average()).Should().BeApproximately(last.ValidationLossAtMean!.Value, 1e-3 * last.ValidationLossAtMean.Value);
        vae.Sample(4, seed: 2).Should().HaveCount(4 * 784);

        // Round trip through the model file: same architecture, bit-identical outputs.
        using var folder = new ScratchDirectory();
        var path = folder.File("conv.safetensors");
        vae.Save(path);
        using var loaded = VaeTransformer.Load(ml, path, "cpu");
        loaded.Architecture.Should().Be(VaeArchitecture.Convolutional);
        loaded.ImageShape.Should().Equal(1, 28, 28);
        loaded.HiddenSizes.Should().Equal(16);
        var probe = test.Take(8).Pixels;
        PersistenceFixtures.ShouldBeBitwiseEqual(PersistenceFixtures.Outputs(loaded, probe), PersistenceFixtures.Outputs(vae, probe));
    }
}
