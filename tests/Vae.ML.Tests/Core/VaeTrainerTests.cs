using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Tests.Core;

public class VaeTrainerTests
{
    private static VaeOptions SmallOptions(int epochs = 3, int? seed = 7) => new()
    {
        HiddenSizes = [32],
        LatentDimension = 2,
        Epochs = epochs,
        BatchSize = 32,
        Seed = seed,
        Device = "cpu",
    };

    [Fact]
    public void Training_lowers_the_loss_and_records_history()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 512);
        var progress = new List<VaeEpochMetrics>();
        var options = SmallOptions(epochs: 5);
        options.Progress = new SynchronousProgress<VaeEpochMetrics>(progress.Add);
        var validation = SyntheticData.Rows(128, seed: 2);
        options.ValidationData = ml.Data.LoadFromEnumerable(validation);

        using var vae = ml.Transforms.Vae(options).Fit(data);

        vae.History.Should().HaveCount(5);
        progress.Select(p => p.Epoch).Should().Equal(1, 2, 3, 4, 5);
        vae.History[^1].TrainLoss.Should().BeLessThan(vae.History[0].TrainLoss * 0.9);
        foreach (var epoch in vae.History)
        {
            epoch.TrainLoss.Should().BeApproximately(epoch.TrainReconstructionLoss + epoch.TrainKlDivergence, 1e-3 * epoch.TrainLoss);
            epoch.ValidationLoss.HasValue.Should().BeTrue("validation data was given, so every epoch is validated");
        }

        // At z = μ the validation loss is the mean per-image BCE + KL of the final weights, computed from the formulas.
        var reference = new Expectations.ReferenceVae(vae.Model.GetParameters());
        var expected = validation.Average(row => reference.LossAtMean(row.Features) is var (bce, kl) ? bce + kl : 0);
        vae.History[^1].ValidationLossAtMean!.Value.Should().BeApproximately(expected, 1e-5 * expected);
    }

    [Fact]
    public void Transform_adds_four_columns_with_declared_types()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 256);
        using var vae = ml.Transforms.Vae(SmallOptions(epochs: 1)).Fit(data);

        var scored = vae.Transform(data);

        scored.Schema["Latent"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 2));
        scored.Schema["LatentLogVariance"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 2));
        scored.Schema["Reconstruction"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, SyntheticData.Width));
        scored.Schema["Score"].Type.Should().Be(NumberDataViewType.Single);
        scored.Schema["Label"].Type.Should().Be(NumberDataViewType.UInt32);

        var latent = scored.GetColumn<float[]>("Latent").ToArray();
        var recon = scored.GetColumn<float[]>("Reconstruction").ToArray();
        var score = scored.GetColumn<float>("Score").ToArray();
        latent.Should().HaveCount(256).And.OnlyContain(v => v.Length == 2 && v.All(float.IsFinite));
        recon.Should().OnlyContain(v => v.Length == SyntheticData.Width && v.All(x => x >= 0 && x <= 1));
        score.Should().OnlyContain(s => float.IsFinite(s) && s > 0);
    }

    [Fact]
    public void Columns_equal_the_array_api_and_batches_cross_boundaries()
    {
        var ml = new MLContext(seed: 0);
        var rows = SyntheticData.Rows(2500); // more than two forward batches of 1024 rows
        var data = ml.Data.LoadFromEnumerable(rows);
        using var vae = ml.Transforms.Vae(SmallOptions(epochs: 1)).Fit(data);
        var matrix = SyntheticData.Matrix(rows);

        var scored = vae.Transform(data);
        var latent = scored.GetColumn<float[]>("Latent").SelectMany(v => v).ToArray();
        var logVar = scored.GetColumn<float[]>("LatentLogVariance").SelectMany(v => v).ToArray();
        var recon = scored.GetColumn<float[]>("Reconstruction").SelectMany(v => v).ToArray();
        var score = scored.GetColumn<float>("Score").ToArray();

        var expectedMu = vae.Encode(matrix, out var expectedLogVar);
        latent.Should().Equal(expectedMu);
        logVar.Should().Equal(expectedLogVar);
        recon.Should().Equal(vae.Reconstruct(matrix));
        score.Should().Equal(vae.Score(matrix));
        vae.Decode(expectedMu).Should().Equal(vae.Reconstruct(matrix));
    }

    [Fact]
    public void Same_seed_gives_bitwise_identical_models_and_another_seed_does_not()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 300);
        var probe = SyntheticData.Matrix(SyntheticData.Rows(10, seed: 9));

        using var a = ml.Transforms.Vae(SmallOptions(seed: 11)).Fit(data);
        using var b = ml.Transforms.Vae(SmallOptions(seed: 11)).Fit(data);
        using var c = ml.Transforms.Vae(SmallOptions(seed: 12)).Fit(data);

        a.History.Select(h => h.TrainLoss).Should().Equal(b.History.Select(h => h.TrainLoss));
        a.Encode(probe).Should().Equal(b.Encode(probe));
        a.Model.GetParameters().SelectMany(p => p.Values).Should().Equal(b.Model.GetParameters().SelectMany(p => p.Values));
        c.Encode(probe).Should().NotEqual(a.Encode(probe));
    }

    [Fact]
    public void Seed_defaults_to_one_derived_from_the_MLContext()
    {
        var data = SyntheticData.Rows(200);
        var probe = SyntheticData.Matrix(data.Take(5));
        float[] Train(int contextSeed)
        {
            var ml = new MLContext(seed: contextSeed);
            using var vae = ml.Transforms.Vae(SmallOptions(epochs: 1, seed: null)).Fit(ml.Data.LoadFromEnumerable(data));
            return vae.Encode(probe);
        }

        Train(5).Should().Equal(Train(5));
        Train(6).Should().NotEqual(Train(5));
    }

    [Fact]
    public void Sample_and_decode_produce_probabilities_and_sampling_is_seeded()
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(SmallOptions(epochs: 1)).Fit(SyntheticData.Load(ml, 128));

        var samples = vae.Sample(16, seed: 3);
        samples.Should().HaveCount(16 * SyntheticData.Width).And.OnlyContain(v => v >= 0 && v <= 1);
        vae.Sample(16, seed: 3).Should().Equal(samples);
        vae.Sample(16, seed: 4).Should().NotEqual(samples);
        var act = () => vae.Encode(new float[SyntheticData.Width + 1]);
        act.Should().Throw<ArgumentException>().WithMessage("*64 values*");
    }

    [Fact]
    public void Streaming_training_matches_the_configuration_and_lowers_the_loss()
    {
        var ml = new MLContext(seed: 0);
        var options = SmallOptions(epochs: 4);
        options.MaxInMemoryBytes = 1024; // forces the streamed path
        using var vae = ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 400));

        vae.History.Should().HaveCount(4);
        vae.History[^1].TrainLoss.Should().BeLessThan(vae.History[0].TrainLoss);
    }

    [Fact]
    public void Catalog_shortcut_sets_the_options()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 64);
        var estimator = ml.Transforms.Vae("Z", "Features", latentDimension: 3, epochs: 1, batchSize: 16, learningRate: 1e-3, seed: 1);

        using var vae = estimator.Fit(data);

        vae.LatentDimension.Should().Be(3);
        vae.LatentColumnName.Should().Be("Z");
        vae.HiddenSizes.Should().Equal(400);
        vae.Transform(data).Schema["Z"].Type.Should().Be(new VectorDataViewType(NumberDataViewType.Single, 3));
    }

    [Fact]
    public void Training_leaves_torchs_global_generator_as_it_was()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        var ml = new MLContext(seed: 0);
        TorchSharp.torch.random.manual_seed(1234);
        using var expected = TorchSharp.torch.rand(4);
        TorchSharp.torch.random.manual_seed(1234);

        using (ml.Transforms.Vae(SmallOptions(epochs: 1)).Fit(SyntheticData.Load(ml, 64)))
        {
        }

        using var actual = TorchSharp.torch.rand(4);
        actual.data<float>().ToArray().Should().Equal(expected.data<float>().ToArray());
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; tests want the reports in order, now.</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
