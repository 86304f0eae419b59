using Microsoft.ML;
using TorchSharp;
using Vae.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Expectations;
using Vae.ML.Tests.Likelihood;
using Vae.ML.Tests.Reliability;
using Vae.ML.Torch;

namespace Vae.ML.Tests.Training;

/// <summary>
/// What the mutation run of the training loop (docs/testing.md, "Torch/: the CPU training step") found untested in
/// <c>VaeTrainingLoop</c>: the behaviour at exact ties and boundaries that the other training tests never reach.
/// </summary>
public class TrainingLoopMutationGapTests
{
    [Fact]
    public void An_equal_validation_loss_is_not_an_improvement()
    {
        // With a learning rate of 1e-30 the weights stay as initialised (EpochAndBatchTests relies on the same), so the
        // validation loss at z = μ is the same number every epoch: the first epoch stays the best, and patience 2 stops
        // the run after the third.
        var ml = new MLContext(seed: 0);
        var options = TrainingTestSupport.Options(epochs: 10);
        options.LearningRate = 1e-30;
        options.ValidationData = SyntheticData.Load(ml, 40, seed: 2);
        options.EarlyStoppingPatience = 2;

        using var vae = ml.Transforms.Vae(options).Fit(TrainingTestSupport.TrainingRows(ml, rows: 64));

        vae.History.Select(m => m.ValidationLossAtMean).Distinct().Should().ContainSingle("the premise: a tie in every epoch");
        vae.History.Select(m => m.EpochsWithoutImprovement).Should().Equal(0, 1, 2);
        vae.History.Select(m => m.IsBestEpoch).Should().Equal(true, false, false);
        vae.History[^1].StopReason.Should().Be(VaeStopReason.EarlyStopping);
    }

    [Fact]
    public void A_network_off_the_CPU_step_trains_on_the_autograd_path_as_torch_optim_Adam_does()
    {
        // A convolutional network takes the autograd path on the CPU. The reference: the same initialisation and random
        // stream (one randperm, then one randn per batch), PyTorch's own Adam, zero_grad before each batch.
        var spec = new VaeNetworkSpec(VaeArchitecture.Convolutional, 2 * 4 * 12, [5, 4], 3, [2, 4, 12]);
        const int rows = 10, batchSize = 4;
        const long seed = 6;
        const double learningRate = 1e-2, beta = 1.5;
        var values = Enumerable.Range(0, rows * spec.InputSize).Select(i => (i * 37 % 101) / 100f).ToArray();
        using var matrix = FeatureMatrix.Allocate(rows, spec.InputSize);
        values.CopyTo(matrix.AllValues);
        using var model = VaeModel.Create(spec, seed, "cpu");
        var history = VaeTrainingLoop.Run(model, matrix, null, new VaeTrainingSettings(1, batchSize, learningRate, beta, seed), _ => { }, () => { });

        using var reference = VaeModel.Create(spec, seed, "cpu");
        using var generator = reference.CreateGeneratorAfterInit(seed);
        using var adam = torch.optim.Adam(reference.Network.parameters(), learningRate);
        using var data = torch.tensor(values, [rows, spec.InputSize]);
        using var permutation = torch.randperm(rows, generator: generator);
        reference.Network.train();
        double total = 0, reconstruction = 0, kl = 0;
        for (var start = 0; start < rows; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            var x = data.index_select(0, permutation.narrow(0, start, Math.Min(batchSize, rows - start)));
            adam.zero_grad();
            var (decoded, mu, logVar) = reference.Network.forward(x, generator);
            var (loss, bce, kld) = VaeLoss.Batch(decoded, x, mu, logVar, beta);
            loss.backward();
            adam.step();
            (total, reconstruction, kl) = (total + loss.item<float>(), reconstruction + bce.item<float>(), kl + kld.item<float>());
        }

        var epoch = history.Should().ContainSingle().Subject;
        epoch.TrainLoss.Should().BeApproximately(total / rows, 1e-5 * total / rows);
        epoch.TrainReconstructionLoss.Should().BeApproximately(reconstruction / rows, 1e-5 * reconstruction / rows);
        epoch.TrainKlDivergence.Should().BeApproximately(kl / rows, 1e-4 * kl / rows);
        var expected = reference.GetParameters().ToDictionary(p => p.Name, p => p.Values);
        foreach (var (name, _, trained) in model.GetParameters())
        {
            for (var i = 0; i < trained.Length; i++)
            {
                trained[i].Should().BeApproximately(expected[name][i], 1e-5f, $"{name}[{i}]");
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gaussian_training_sees_the_standardized_rows_in_memory_and_streamed(bool streamed)
    {
        // As EpochAndBatchTests.Each_row_counts_exactly_once_per_epoch, for the Gaussian: with lr 1e-30 the weights stay
        // as initialised, so each epoch's KL is the mean over the rows of KL(encoder(standardized row)); raw rows (values
        // up to 1000) give another KL altogether.
        var ml = new MLContext(seed: 0);
        var rows = ManifoldData.Rows(60, seed: 1);
        var options = ManifoldData.Options(epochs: 2);
        options.LearningRate = 1e-30;
        options.BatchSize = 16;
        options.MaxInMemoryBytes = streamed ? 0 : 1L << 30;

        using var vae = ml.Transforms.Vae(options).Fit(ManifoldData.Load(ml, rows));

        var (mean, std) = vae.Standardization!.Value;
        var reference = new ReferenceVae(vae.Model.GetParameters());
        var expected = rows.Average(row =>
        {
            var standardized = row.Features.Select((v, i) => (v - mean[i]) / std[i]).ToArray();
            var (mu, logVar) = reference.Encode(standardized);
            return ReferenceVae.Kl(mu, logVar);
        });
        vae.History.Should().HaveCount(2);
        vae.History.Should().OnlyContain(m => Math.Abs(m.TrainKlDivergence - expected) <= 1e-4 * expected);
    }

    [Fact]
    public void The_sampled_validation_loss_averages_each_batchs_loss_with_its_own_noise()
    {
        // 70 rows in batches of 32: 32, 32 and 6. Each batch draws its ε from the run's generator, in batch order; the
        // loss at z = μ draws none. Both are summed over the rows and divided by the row count.
        const int rows = 70, batchSize = 32;
        const double beta = 0.7;
        var values = SyntheticData.Matrix(SyntheticData.Rows(rows, seed: 4));
        using var matrix = FeatureMatrix.Allocate(rows, SyntheticData.Width);
        values.CopyTo(matrix.AllValues);
        using var model = VaeModel.Create(VaeNetworkSpec.Mlp(SyntheticData.Width, [8], 2), seed: 2, "cpu");
        using var generator = new torch.Generator(11, torch.CPU);
        using var replay = new torch.Generator(11, torch.CPU);

        var (sampled, atMean) = VaeTrainingLoop.Evaluate(model, matrix, beta, batchSize, generator);

        var reference = new ReferenceVae(model.GetParameters());
        var expectedAtMean = Enumerable.Range(0, rows).Average(r =>
        {
            var (bce, kl) = reference.LossAtMean(values.AsSpan(r * SyntheticData.Width, SyntheticData.Width));
            return bce + (beta * kl);
        });
        double expectedSampled = 0;
        using (torch.no_grad())
        {
            for (var start = 0; start < rows; start += batchSize)
            {
                using var scope = torch.NewDisposeScope();
                var count = Math.Min(batchSize, rows - start);
                var x = torch.tensor(values.AsSpan(start * SyntheticData.Width, count * SyntheticData.Width).ToArray(), [count, SyntheticData.Width]);
                var (logits, mu, logVar) = model.Network.forward(x, replay);
                expectedSampled += VaeLoss.Batch(logits, x, mu, logVar, beta).Total.item<float>();
            }
        }

        atMean.Should().BeApproximately(expectedAtMean, 1e-5 * expectedAtMean);
        sampled.Should().BeApproximately(expectedSampled / rows, 1e-6 * expectedSampled / rows);
        sampled.Should().NotBe(atMean, "the sampled loss has noise in it");
    }

    /// <summary>A small in-memory run through the loop itself: <paramref name="rows"/> rows of SyntheticData.</summary>
    private static List<VaeEpochMetrics> RunLoop(VaeTrainingSettings settings, FeatureMatrix? validation = null, VaeTrainingState? resumeFrom = null,
        VaeCheckpointing? checkpointing = null, int rows = 40, Action<VaeBatchProgress>? onBatch = null)
    {
        using var matrix = Matrix(rows, seed: 1);
        using var model = VaeModel.Create(VaeNetworkSpec.Mlp(SyntheticData.Width, [8], 2), settings.Seed, "cpu");
        return VaeTrainingLoop.Run(model, matrix, validation, settings, _ => { }, () => { }, resumeFrom, checkpointing, onBatch);
    }

    /// <summary>Settings whose weights never move (lr 1e-30), so every epoch's validation loss ties with the first.</summary>
    private static VaeTrainingSettings Tied(int epochs) => new(epochs, 16, 1e-30, 1, 3, EarlyStoppingPatience: 2);

    [Fact]
    public void Throttled_progress_reports_the_last_batch_when_the_rows_fill_every_batch()
    {
        var reports = new List<(int Epoch, int Batch, int TotalBatches)>();
        RunLoop(new VaeTrainingSettings(2, 16, 1e-3, 1, 3, BatchProgressInterval: TimeSpan.FromHours(1)), rows: 32,
            onBatch: p => reports.Add((p.Epoch, p.Batch, p.TotalBatches)));
        reports.Should().Equal((1, 2, 2), (2, 2, 2));
    }

    [Fact]
    public void An_early_stop_is_checkpointed_with_its_reason_whatever_the_checkpoint_cadence()
    {
        using var validation = Matrix(20, seed: 2);
        var saved = new List<VaeTrainingState>();
        var history = RunLoop(Tied(10), validation, checkpointing: new VaeCheckpointing(10, saved.Add));
        history.Select(m => m.StopReason).Should().Equal(null, null, VaeStopReason.EarlyStopping);
        saved.Select(s => s.Epoch).Should().Equal(3);
        saved[0].History[^1].StopReason.Should().Be(VaeStopReason.EarlyStopping);

        // Resumed with more epochs, it trains nothing more and still says why it stopped.
        var resumed = RunLoop(Tied(20), validation, saved[0]);
        resumed.Select(m => (m.StopReason, m.TotalEpochs)).Should().Equal((null, 20), (null, 20), (VaeStopReason.EarlyStopping, 20));
    }

    [Fact]
    public void Resuming_after_a_tie_with_the_first_epoch_keeps_that_epoch_as_the_best()
    {
        // The checkpoint of epoch 2 holds one epoch without improvement: its best epoch is the first of the history.
        using var validation = Matrix(20, seed: 2);
        var saved = new List<VaeTrainingState>();
        RunLoop(Tied(2), validation, checkpointing: new VaeCheckpointing(1, saved.Add));
        saved[1].History.Select(m => m.EpochsWithoutImprovement).Should().Equal(0, 1);

        var resumed = RunLoop(Tied(10), validation, saved[1]);
        resumed.Select(m => m.EpochsWithoutImprovement).Should().Equal(0, 1, 2);
        resumed.Select(m => m.IsBestEpoch).Should().Equal(true, false, false);
        resumed[^1].StopReason.Should().Be(VaeStopReason.EarlyStopping);
    }

    [Fact]
    public void A_mid_run_checkpoint_resumed_with_its_own_epoch_count_ends_completed()
    {
        var saved = new List<VaeTrainingState>();
        RunLoop(new VaeTrainingSettings(3, 16, 1e-3, 1, 3), checkpointing: new VaeCheckpointing(1, saved.Add));
        saved[1].History[^1].StopReason.Should().BeNull("epoch 2 of 3 had not ended the run");

        var resumed = RunLoop(new VaeTrainingSettings(2, 16, 1e-3, 1, 3), resumeFrom: saved[1]);
        resumed.Select(m => (m.Epoch, m.StopReason)).Should().Equal((1, (VaeStopReason?)null), (2, VaeStopReason.Completed));
    }

    private static FeatureMatrix Matrix(int rows, int seed)
    {
        var matrix = FeatureMatrix.Allocate(rows, SyntheticData.Width);
        SyntheticData.Matrix(SyntheticData.Rows(rows, seed)).CopyTo(matrix.AllValues);
        return matrix;
    }

    [Fact]
    public void Checkpoints_are_handed_over_every_N_epochs_and_after_the_last()
    {
        var saved = new List<int>();
        RunLoop(new VaeTrainingSettings(5, 16, 1e-3, 1, 3), checkpointing: new VaeCheckpointing(2, state => saved.Add(state.Epoch)));
        saved.Should().Equal(2, 4, 5);
    }

    [Fact]
    public void Validation_without_a_patience_records_no_early_stopping_state()
    {
        using var validation = Matrix(20, seed: 2);
        var history = RunLoop(new VaeTrainingSettings(2, 16, 1e-3, 1, 3), validation);
        history.Should().OnlyContain(m => m.ValidationLossAtMean != null && m.EpochsWithoutImprovement == null && !m.IsBestEpoch);
        history.Select(m => m.StopReason).Should().Equal(null, VaeStopReason.Completed);
    }

    [Fact]
    public void A_checkpoint_without_early_stopping_state_cannot_resume_a_run_with_early_stopping()
    {
        using var validation = Matrix(20, seed: 2);
        var settings = new VaeTrainingSettings(3, 16, 1e-3, 1, 3, EarlyStoppingPatience: 5);
        VaeTrainingState? state = null;
        RunLoop(settings with { Epochs = 2 }, validation, checkpointing: new VaeCheckpointing(2, s => state = s));
        state!.BestParameters.Should().NotBeNull();
        state.History.Select(m => m.EpochsWithoutImprovement).Should().NotContainNulls();

        var withoutCount = state with { History = state.History.Select(m => m with { EpochsWithoutImprovement = null }).ToList() };
        ((Action)(() => RunLoop(settings, validation, withoutCount))).Should().Throw<InvalidDataException>().WithMessage("*written without early stopping*");
        var withoutBest = state with { BestParameters = null };
        ((Action)(() => RunLoop(settings, validation, withoutBest))).Should().Throw<InvalidDataException>().WithMessage("*lacks the best epoch's weights*");

        var resumed = RunLoop(settings, validation, state);
        resumed.Select(m => m.Epoch).Should().Equal(1, 2, 3);
        resumed.Should().ContainSingle(m => m.IsBestEpoch);
    }
}
