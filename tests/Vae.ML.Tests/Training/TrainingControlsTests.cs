using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Reliability;
using Vae.ML.Torch;

namespace Vae.ML.Tests.Training;

/// <summary>KL warm-up, early stopping and batch progress (VaeOptions' training controls).</summary>
public sealed class TrainingControlsTests
{
    /// <summary>
    /// Validation rows from other prototypes than the training rows (another seed): the validation loss first falls, then
    /// rises as the network fits the training prototypes, so early stopping has something to stop.
    /// </summary>
    private static VaeOptions EarlyStopping(MLContext ml, int epochs = 40, int? patience = 2)
    {
        var options = TrainingTestSupport.Options(epochs);
        options.LearningRate = 1e-2;
        options.ValidationData = SyntheticData.Load(ml, 64, seed: 2);
        options.EarlyStoppingPatience = patience;
        return options;
    }

    private static VaeTransformer Train(MLContext ml, VaeOptions options, int rows = 96)
        => ml.Transforms.Vae(options).Fit(TrainingTestSupport.TrainingRows(ml, rows));

    [Fact]
    public void Warm_up_weight_is_beta_times_epochs_done_over_warm_up_epochs()
    {
        Enumerable.Range(1, 6).Select(e => VaeTrainingLoop.KlWeight(2.0, 4, e)).Should().Equal(0.0, 0.5, 1.0, 1.5, 2.0, 2.0);
        Enumerable.Range(1, 3).Select(e => VaeTrainingLoop.KlWeight(0.7, 0, e)).Should().Equal(0.7, 0.7, 0.7);
    }

    [Fact]
    public void Warm_up_is_recorded_in_history_and_weights_the_train_loss()
    {
        var ml = new MLContext(seed: 0);
        var options = TrainingTestSupport.Options(epochs: 5);
        options.Beta = 1.5;
        options.KlWarmupEpochs = 3;
        options.ValidationData = SyntheticData.Load(ml, 32, seed: 2);
        using var vae = Train(ml, options);

        vae.History.Select(m => m.KlWeight).Should().Equal(0.0, 0.5, 1.0, 1.5, 1.5);
        foreach (var m in vae.History)
        {
            m.TrainLoss.Should().BeApproximately(m.TrainReconstructionLoss + m.KlWeight!.Value * m.TrainKlDivergence, 1e-3 * m.TrainLoss);
        }

        vae.Beta.Should().Be(1.5, "the model scores with the final β");

        // Validation is at the final β in every epoch, so the first epoch's validation loss counts the KL term fully.
        var first = vae.History[0];
        first.ValidationLossAtMean.Should().NotBeNull();
        vae.History.Select(m => m.StopReason).Should().Equal(null, null, null, null, VaeStopReason.Completed);
    }

    [Fact]
    public void Without_controls_history_records_the_full_beta_and_no_early_stopping()
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml, TrainingTestSupport.Options(epochs: 2));
        vae.History.Select(m => m.KlWeight).Should().Equal(1.0, 1.0);
        vae.History.Should().OnlyContain(m => m.EpochsWithoutImprovement == null && !m.IsBestEpoch);
        vae.History[^1].StopReason.Should().Be(VaeStopReason.Completed);
    }

    [Fact]
    public void Early_stopping_keeps_the_best_epochs_weights_and_says_why_it_stopped()
    {
        var ml = new MLContext(seed: 0);
        var options = EarlyStopping(ml);
        using var stopped = Train(ml, options);
        var history = stopped.History;

        history.Count.Should().BeLessThan(40, "the validation loss must rise on these data");
        history[^1].StopReason.Should().Be(VaeStopReason.EarlyStopping);
        history[^1].EpochsWithoutImprovement.Should().Be(2);
        history.Take(history.Count - 1).Should().OnlyContain(m => m.StopReason == null);
        var best = history.Should().ContainSingle(m => m.IsBestEpoch).Subject;
        best.Epoch.Should().Be(history.Count - 2);
        best.ValidationLossAtMean.Should().Be(history.Min(m => m.ValidationLossAtMean));
        best.EpochsWithoutImprovement.Should().Be(0);

        // The kept weights are exactly those of a run that ends at the best epoch (same random draws up to there).
        var upToBest = EarlyStopping(ml, epochs: best.Epoch, patience: null);
        using var reference = Train(ml, upToBest);
        stopped.ShouldHaveIdenticalWeights(reference);

        // And the Score (loss at μ, final β) of the validation rows averages to the best epoch's validation loss.
        var scores = stopped.Transform(options.ValidationData!).GetColumn<float>("Score").ToArray();
        scores.Average(s => (double)s).Should().BeApproximately(best.ValidationLossAtMean!.Value, 1e-3 * best.ValidationLossAtMean.Value);
    }

    [Fact]
    public void What_the_controls_recorded_survives_every_persistence_path()
    {
        var ml = new MLContext(seed: 0);
        var options = EarlyStopping(ml);
        options.KlWarmupEpochs = 2;
        var data = TrainingTestSupport.TrainingRows(ml, 96);
        using var vae = ml.Transforms.Vae(options).Fit(data);
        vae.History.Should().Contain(m => m.IsBestEpoch).And.Contain(m => m.StopReason == VaeStopReason.EarlyStopping)
            .And.Contain(m => m.KlWeight == 0.5);
        using var folder = new TrainingTestSupport.TempFolder();
        Directory.CreateDirectory(folder.Path);

        var file = folder.File("model.safetensors");
        vae.Save(file);
        using (var loaded = VaeTransformer.Load(ml, file))
        {
            loaded.History.Should().Equal(vae.History);
        }

        using (var stream = new MemoryStream())
        {
            vae.Save(stream);
            stream.Position = 0;
            using var loaded = VaeTransformer.Load(ml, stream);
            loaded.History.Should().Equal(vae.History);
        }

        var zip = folder.File("model.zip");
        ml.Model.Save(vae, data.Schema, zip);
        using (var loaded = (VaeTransformer)new MLContext(seed: 5).Model.Load(zip, out _))
        {
            loaded.History.Should().Equal(vae.History);
        }

        // The safetensors metadata, as any reader of the file (PyTorch's safetensors included) sees it.
        string history;
        using (var read = File.OpenRead(file))
        {
            history = Vae.ML.Persistence.Safetensors.ReadHeader(read, read.Length, file).Metadata["history"];
        }

        history.Should().Contain("\"klWeight\":0.5").And.Contain("\"isBestEpoch\":true").And.Contain("\"stopReason\":\"EarlyStopping\"")
            .And.Contain("\"epochsWithoutImprovement\":2");
    }

    [Fact]
    public void Early_stopping_needs_validation_data_and_a_positive_patience()
    {
        var ml = new MLContext(seed: 0);
        var options = TrainingTestSupport.Options();
        options.EarlyStoppingPatience = 3;
        var act = () => ml.Transforms.Vae(options).Fit(TrainingTestSupport.TrainingRows(ml));
        act.Should().Throw<ArgumentException>().Where(e => e.ParamName == nameof(VaeOptions.EarlyStoppingPatience) && e.Message.Contains("ValidationData"));

        options.EarlyStoppingPatience = 0;
        ((Action)(() => ml.Transforms.Vae(options))).Should().Throw<ArgumentOutOfRangeException>().Where(e => e.ParamName == nameof(VaeOptions.EarlyStoppingPatience));

        options.EarlyStoppingPatience = null;
        options.KlWarmupEpochs = -1;
        ((Action)(() => ml.Transforms.Vae(options))).Should().Throw<ArgumentOutOfRangeException>().Where(e => e.ParamName == nameof(VaeOptions.KlWarmupEpochs));

        options.KlWarmupEpochs = 0;
        options.BatchProgressInterval = TimeSpan.FromSeconds(-1);
        ((Action)(() => ml.Transforms.Vae(options))).Should().Throw<ArgumentOutOfRangeException>().Where(e => e.ParamName == nameof(VaeOptions.BatchProgressInterval));
    }

    [Fact]
    public void Resume_with_warm_up_and_early_stopping_is_bit_identical_to_an_uninterrupted_run()
    {
        var ml = new MLContext(seed: 0);
        var options = EarlyStopping(ml);
        options.KlWarmupEpochs = 3;
        using var uninterrupted = Train(ml, options);
        var stopEpoch = uninterrupted.History.Count;
        stopEpoch.Should().BeGreaterThan(2);
        uninterrupted.History[stopEpoch - 2].EpochsWithoutImprovement.Should().BeGreaterThan(0,
            "the checkpoint resumed from must hold best weights other than its current ones");

        using var folder = new TrainingTestSupport.TempFolder();
        var first = EarlyStopping(ml, epochs: stopEpoch - 1);
        first.KlWarmupEpochs = 3;
        first.CheckpointDirectory = folder.Path;
        first.KeepLastCheckpoints = null;
        using (Train(ml, first))
        {
        }

        // From the epoch before the stop: the best weights and the count of epochs without improvement must carry over.
        var resumed = EarlyStopping(ml);
        resumed.KlWarmupEpochs = 3;
        resumed.ResumeFrom = folder.File(Vae.ML.Persistence.VaeCheckpoint.FileName(stopEpoch - 1));
        resumed.CheckpointDirectory = folder.Path;
        resumed.KeepLastCheckpoints = null;
        using var continued = Train(ml, resumed);
        folder.FileNames().Should().Contain(Vae.ML.Persistence.VaeCheckpoint.FileName(stopEpoch), "the epoch that stops early is checkpointed");
        continued.ShouldHaveIdenticalHistory(uninterrupted);
        continued.ShouldHaveIdenticalWeights(uninterrupted);

        // A checkpoint read back holds what the run recorded.
        var (run, _, state) = Vae.ML.Persistence.VaeCheckpoint.Read(folder.File(Vae.ML.Persistence.VaeCheckpoint.FileName(stopEpoch - 1)));
        run.KlWarmupEpochs.Should().Be(3);
        run.EarlyStoppingPatience.Should().Be(2);
        state.BestParameters.Should().NotBeNull();
        state.History.Select(m => m.KlWeight).Should().Equal(uninterrupted.History.Take(stopEpoch - 1).Select(m => m.KlWeight));

        // Resuming from the checkpoint of the epoch that stopped early trains nothing more and ends the same.
        var again = EarlyStopping(ml);
        again.KlWarmupEpochs = 3;
        again.ResumeFrom = folder.Path;
        using (var other = Train(ml, again))
        {
            other.ShouldHaveIdenticalHistory(uninterrupted);
            other.ShouldHaveIdenticalWeights(uninterrupted);
        }

        var changed = EarlyStopping(ml, patience: 5);
        changed.KlWarmupEpochs = 3;
        changed.ResumeFrom = resumed.ResumeFrom;
        var act = () => Train(ml, changed);
        act.Should().Throw<ArgumentException>().Where(e => e.ParamName == nameof(VaeOptions.EarlyStoppingPatience));
    }

    [Fact]
    public void Batch_progress_reports_every_batch_when_not_throttled_and_leaves_the_run_unchanged()
    {
        var ml = new MLContext(seed: 0);
        var reports = new List<VaeBatchProgress>();
        var epochs = new List<VaeEpochMetrics>();
        var options = TrainingTestSupport.Options(epochs: 2);
        options.BatchProgress = new TrainingTestSupport.Reporter<VaeBatchProgress>(reports.Add);
        options.BatchProgressInterval = TimeSpan.Zero;
        options.Progress = new TrainingTestSupport.Reporter<VaeEpochMetrics>(epochs.Add);
        using var vae = Train(ml, options, rows: 100);

        // 100 rows in batches of 32: 4 batches (32, 32, 32, 4) per epoch.
        reports.Select(r => (r.Epoch, r.Batch, r.Rows)).Should().Equal(
            (1, 1, 32L), (1, 2, 64L), (1, 3, 96L), (1, 4, 100L), (2, 1, 32L), (2, 2, 64L), (2, 3, 96L), (2, 4, 100L));
        reports.Should().OnlyContain(r => r.TotalBatches == 4 && r.TotalRows == 100 && r.TotalEpochs == 2);
        reports[3].EpochFraction.Should().Be(1.0);
        reports[3].TrainLoss.Should().Be(epochs[0].TrainLoss, "the last batch's running loss is the epoch's loss");
        reports[7].TrainLoss.Should().Be(epochs[1].TrainLoss);

        using var quiet = Train(ml, TrainingTestSupport.Options(epochs: 2), rows: 100);
        vae.ShouldHaveIdenticalWeights(quiet);
    }

    [Fact]
    public void Throttled_batch_progress_still_reports_each_epochs_last_batch()
    {
        var ml = new MLContext(seed: 0);
        var reports = new List<VaeBatchProgress>();
        var options = TrainingTestSupport.Options(epochs: 3);
        options.BatchProgress = new TrainingTestSupport.Reporter<VaeBatchProgress>(reports.Add);
        options.BatchProgressInterval = TimeSpan.FromHours(1);
        using var vae = Train(ml, options, rows: 100);
        reports.Select(r => (r.Epoch, r.Batch)).Should().Equal((1, 4), (2, 4), (3, 4));
    }
}
