using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using Vae.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Torch;

namespace Vae.ML.Tests.Expectations;

/// <summary>
/// Every row is used exactly once per epoch, in batches of the configured size with one partial batch at the end, in
/// memory and streamed; the scoring cursor batches its rows and runs the decoder only for the columns that need it.
/// </summary>
/// <remarks>
/// In-memory and streamed training shuffle differently, by design: in memory the order is torch.randperm over all rows
/// (the PyTorch script's order), streamed it is System.Random seeded by one draw from the same generator and shuffled
/// within a pool of 64 batches (the data never sits in memory whole). Both visit each row once per epoch and are
/// reproducible for a seed, but the same seed gives different models on the two paths.
/// </remarks>
public class EpochAndBatchTests
{
    private const double Relative = 1e-5;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Each_row_counts_exactly_once_per_epoch(bool streamed)
    {
        // With a learning rate of 1e-30 Adam's steps (≤ lr per weight) vanish below float32 resolution: the weights stay
        // at their seeded initialisation, so each epoch's KL (which, unlike BCE, does not depend on the sampled noise) is
        // exactly the mean over the rows of KL(x) — a row dropped or used twice changes it.
        var ml = new MLContext(seed: 0);
        var rows = SyntheticData.Rows(100, seed: 3);
        var options = new VaeOptions
        {
            HiddenSizes = [8], LatentDimension = 2, Epochs = 2, BatchSize = 32, LearningRate = 1e-30, Seed = 9, Device = "cpu",
            MaxInMemoryBytes = streamed ? 1024 : 1L << 30,
        };

        using var vae = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(rows));

        using var initial = VaeModel.Create(VaeNetworkSpec.Mlp(SyntheticData.Width, [8], 2), seed: 9, "cpu");
        vae.Model.GetParameters().SelectMany(p => p.Values).Should().Equal(initial.GetParameters().SelectMany(p => p.Values),
            "the premise of this test: training with lr = 1e-30 leaves the weights as initialised");
        var reference = new ReferenceVae(vae.Model.GetParameters());
        var klPerRow = rows.Select(row => reference.LossAtMean(row.Features).Kl).ToArray();
        var expected = klPerRow.Average();
        var spread = Math.Sqrt(klPerRow.Average(kl => (kl - expected) * (kl - expected)));
        spread.Should().BeGreaterThan(1000 * Relative * expected, "rows must differ enough for a lost row to show");

        vae.History.Should().HaveCount(2);
        foreach (var epoch in vae.History)
        {
            epoch.TrainKlDivergence.Should().BeApproximately(expected, Relative * expected, $"epoch {epoch.Epoch} ({(streamed ? "streamed" : "in memory")})");
        }
    }

    [Fact]
    public void Resident_batches_are_a_fresh_permutation_each_epoch_with_one_partial_batch_last()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var data = torch.arange(100, dtype: torch.float32).reshape(100, 1);
        using var generator = new torch.Generator(5, torch.CPU);

        var first = ResidentEpoch(data, generator);
        var second = ResidentEpoch(data, generator);

        first.Select(batch => batch.Length).Should().Equal(32, 32, 32, 4);
        first.SelectMany(batch => batch).Order().Should().Equal(Enumerable.Range(0, 100));
        second.Select(batch => batch.Length).Should().Equal(32, 32, 32, 4);
        second.SelectMany(batch => batch).Order().Should().Equal(Enumerable.Range(0, 100));
        second.SelectMany(batch => batch).Should().NotEqual(first.SelectMany(batch => batch), "each epoch reshuffles");
    }

    [Fact]
    public void Streamed_batches_cover_every_row_once_across_shuffle_pools_with_one_partial_batch_last()
    {
        // 2,100 rows with batches of 32 fill one pool of 64 batches (2,048 rows) and leave 52 rows: 65 full batches, then 20.
        const int count = 2100;
        var ml = new MLContext(seed: 0);
        var definition = SchemaDefinition.Create(typeof(Row));
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1);
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, count).Select(i => new Row { Features = [i / (float)count] }), definition);
        var features = new StreamedFeatures(view, "Features", 1, count, "Training data", () => { });
        using var model = VaeModel.Create(VaeNetworkSpec.Mlp(1, [2], 1), seed: 0, "cpu");
        using var generator = new torch.Generator(5, torch.CPU);

        var first = StreamedEpoch(features, model, generator, count);
        var second = StreamedEpoch(features, model, generator, count);

        int[] sizes = [.. Enumerable.Repeat(32, 65), 20];
        first.Select(batch => batch.Length).Should().Equal(sizes);
        first.SelectMany(batch => batch).Order().Should().Equal(Enumerable.Range(0, count));
        second.Select(batch => batch.Length).Should().Equal(sizes);
        second.SelectMany(batch => batch).Order().Should().Equal(Enumerable.Range(0, count));
        second.SelectMany(batch => batch).Should().NotEqual(first.SelectMany(batch => batch), "each epoch reshuffles");
    }

    [Fact]
    public void Streamed_training_is_reproducible_for_a_seed()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 150);
        VaeTransformer Train() => ml.Transforms.Vae(new VaeOptions
        {
            HiddenSizes = [8], LatentDimension = 2, Epochs = 2, BatchSize = 32, Seed = 4, Device = "cpu", MaxInMemoryBytes = 1024,
        }).Fit(data);

        using var a = Train();
        using var b = Train();

        a.History.Select(h => h.TrainLoss).Should().Equal(b.History.Select(h => h.TrainLoss));
        a.Model.GetParameters().SelectMany(p => p.Values).Should().Equal(b.Model.GetParameters().SelectMany(p => p.Values));
    }

    [Fact]
    public void Cursor_runs_the_network_once_per_1024_rows_and_the_decoder_only_for_reconstruction_or_score()
    {
        const int width = 6, count = 2500; // three cursor batches: 1024, 1024, 452
        using var vae = ReferenceVae.KnownWeights(width, [4], latentDimension: 2, beta: 1);
        var ml = new MLContext(seed: 0);
        var definition = SchemaDefinition.Create(typeof(Row));
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        var scored = vae.Transform(ml.Data.LoadFromEnumerable(
            Enumerable.Range(0, count).Select(i => new Row { Features = Enumerable.Range(0, width).Select(j => (i * 7 + j) % 11 / 10f).ToArray() }), definition));
        var model = vae.Model;

        scored.GetColumn<float[]>("Features").Should().HaveCount(count);
        (model.EncoderPasses, model.DecoderPasses).Should().Be((0L, 0L), "a cursor that reads no VAE column runs no network");

        scored.GetColumn<float[]>("Latent").Should().HaveCount(count);
        (model.EncoderPasses, model.DecoderPasses).Should().Be((3L, 0L), "μ needs the encoder only, once per batch of 1024 rows");

        scored.GetColumn<float[]>("LatentLogVariance").Should().HaveCount(count);
        (model.EncoderPasses, model.DecoderPasses).Should().Be((6L, 0L));

        scored.GetColumn<float[]>("Reconstruction").Should().HaveCount(count);
        (model.EncoderPasses, model.DecoderPasses).Should().Be((9L, 3L));

        scored.GetColumn<float>("Score").Should().HaveCount(count);
        (model.EncoderPasses, model.DecoderPasses).Should().Be((12L, 6L));
    }

    private static List<int[]> ResidentEpoch(torch.Tensor data, torch.Generator generator)
    {
        var batches = new List<int[]>();
        foreach (var batch in VaeTrainingLoop.ResidentBatches(data, 32, generator, torch.CPU))
        {
            using (batch)
            {
                batches.Add(batch.data<float>().ToArray().Select(v => (int)v).ToArray());
            }
        }

        return batches;
    }

    private static List<int[]> StreamedEpoch(ITrainingFeatures features, VaeModel model, torch.Generator generator, int count)
    {
        var batches = new List<int[]>();
        foreach (var batch in VaeTrainingLoop.StreamedBatches(features, 32, generator, model))
        {
            using (batch)
            {
                batches.Add(batch.data<float>().ToArray().Select(v => (int)MathF.Round(v * count)).ToArray());
            }
        }

        return batches;
    }

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
    }
}
