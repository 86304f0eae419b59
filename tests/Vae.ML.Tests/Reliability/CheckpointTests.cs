using Microsoft.ML;
using Vae.ML.Persistence;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Persistence;
using static Vae.ML.Tests.Reliability.TrainingTestSupport;

namespace Vae.ML.Tests.Reliability;

/// <summary>Checkpoints are written atomically and a resumed run is bit-identical to one never interrupted.</summary>
public class CheckpointTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_run_interrupted_after_epoch_2_and_resumed_equals_an_uninterrupted_run_bit_for_bit(bool streamed)
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingRows(ml);
        var validation = TrainingRows(ml, rows: 64, seed: 2);
        VaeOptions Configured(int epochs)
        {
            var o = Options(epochs);
            o.ValidationData = validation;
            o.MaxInMemoryBytes = streamed ? 0 : o.MaxInMemoryBytes;
            return o;
        }

        using var uninterrupted = ml.Transforms.Vae(Configured(4)).Fit(data);

        using var folder = new TempFolder();
        using var cts = new CancellationTokenSource();
        var interrupted = Configured(4);
        interrupted.CheckpointDirectory = folder.Path;
        interrupted.Progress = new Reporter<VaeEpochMetrics>(m =>
        {
            if (m.Epoch == 2)
            {
                cts.Cancel(); // stops at the first batch boundary of epoch 3
            }
        });
        var fit = () => ml.Transforms.Vae(interrupted).Fit(data, cts.Token);
        fit.Should().Throw<OperationCanceledException>();
        folder.FileNames().Should().Equal("checkpoint-epoch-0001.safetensors", "checkpoint-epoch-0002.safetensors");

        var resumed = Configured(4);
        resumed.CheckpointDirectory = folder.Path;
        resumed.ResumeFrom = streamed ? folder.Path : folder.File("checkpoint-epoch-0002.safetensors"); // a folder: its newest
        var reported = new List<int>();
        resumed.Progress = new Reporter<VaeEpochMetrics>(m => reported.Add(m.Epoch));
        using var continued = ml.Transforms.Vae(resumed).Fit(data);

        reported.Should().Equal(3, 4);
        continued.ShouldHaveIdenticalWeights(uninterrupted);
        continued.ShouldHaveIdenticalHistory(uninterrupted);
        folder.FileNames().Should().Equal(
            "checkpoint-epoch-0002.safetensors", "checkpoint-epoch-0003.safetensors", "checkpoint-epoch-0004.safetensors");
    }

    [Fact]
    public void Resuming_a_finished_run_with_more_epochs_continues_it_and_without_a_seed_uses_the_checkpoints()
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingRows(ml);
        using var fourEpochs = ml.Transforms.Vae(Options(epochs: 4)).Fit(data);

        using var folder = new TempFolder();
        var first = Options(epochs: 2);
        first.CheckpointDirectory = folder.Path;
        first.CheckpointEveryEpochs = 5; // the last epoch is saved anyway
        using (ml.Transforms.Vae(first).Fit(data))
        {
        }

        folder.FileNames().Should().Equal("checkpoint-epoch-0002.safetensors");
        var more = Options(epochs: 4);
        more.Seed = null;
        more.ResumeFrom = folder.File("checkpoint-epoch-0002.safetensors");
        using var continued = ml.Transforms.Vae(more).Fit(data);

        continued.ShouldHaveIdenticalWeights(fourEpochs);
        continued.ShouldHaveIdenticalHistory(fourEpochs);
        continued.History.Should().OnlyContain(h => h.TotalEpochs == 4);

        var same = Options(epochs: 2);
        same.ResumeFrom = more.ResumeFrom;
        using var nothingLeft = ml.Transforms.Vae(same).Fit(data);
        nothingLeft.History.Should().HaveCount(2);
        nothingLeft.History[^1].StopReason.Should().Be(VaeStopReason.Completed);
        nothingLeft.History.Select(h => h with { TotalEpochs = 4, Seconds = 0, StopReason = null })
            .Should().Equal(fourEpochs.History.Take(2).Select(h => h with { Seconds = 0 }));
    }

    [Fact]
    public void Resuming_from_a_folder_without_checkpoints_names_the_option()
    {
        var ml = new MLContext(seed: 0);
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder.Path);
        var options = Options(epochs: 2);
        options.ResumeFrom = folder.Path;

        var fit = () => ml.Transforms.Vae(options).Fit(TrainingRows(ml, rows: 32));

        fit.Should().Throw<ArgumentException>().Where(e => e.ParamName == nameof(VaeOptions.ResumeFrom)).WithMessage("*folder without checkpoints*");
    }

    [Fact]
    public void Old_checkpoints_are_pruned_to_the_newest_N()
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingRows(ml, rows: 64);
        using var keepTwo = new TempFolder();
        var options = Options(epochs: 5);
        options.CheckpointDirectory = keepTwo.Path;
        options.KeepLastCheckpoints = 2;
        ml.Transforms.Vae(options).Fit(data).Dispose();
        keepTwo.FileNames().Should().Equal("checkpoint-epoch-0004.safetensors", "checkpoint-epoch-0005.safetensors");

        using var keepAll = new TempFolder();
        options.CheckpointDirectory = keepAll.Path;
        options.KeepLastCheckpoints = null;
        options.CheckpointEveryEpochs = 2;
        ml.Transforms.Vae(options).Fit(data).Dispose();
        keepAll.FileNames().Should().Equal(
            "checkpoint-epoch-0002.safetensors", "checkpoint-epoch-0004.safetensors", "checkpoint-epoch-0005.safetensors");
    }

    [Fact]
    public void A_fresh_run_refuses_a_folder_that_already_holds_checkpoints()
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingRows(ml, rows: 64);
        using var folder = new TempFolder();
        var options = Options(epochs: 1);
        options.CheckpointDirectory = folder.Path;
        ml.Transforms.Vae(options).Fit(data).Dispose();
        var before = File.ReadAllBytes(folder.File("checkpoint-epoch-0001.safetensors"));

        var again = () => ml.Transforms.Vae(options).Fit(data);

        again.Should().Throw<ArgumentException>().Where(e => e.ParamName == nameof(VaeOptions.CheckpointDirectory))
            .WithMessage("*already holds 1 checkpoint*ResumeFrom*");
        File.ReadAllBytes(folder.File("checkpoint-epoch-0001.safetensors")).Should().Equal(before);
    }

    public static TheoryData<string, Action<VaeOptions>> Mismatches => new()
    {
        { nameof(VaeOptions.BatchSize), o => o.BatchSize = 16 },
        { nameof(VaeOptions.Seed), o => o.Seed = 8 },
        { nameof(VaeOptions.LearningRate), o => o.LearningRate = 2e-3 },
        { nameof(VaeOptions.Beta), o => o.Beta = 4 },
        { "the architecture (input-hidden-latent)", o => o.HiddenSizes = [16] },
        { "the architecture (input-hidden-latent)", o => o.LatentDimension = 3 },
        { nameof(VaeOptions.MaxInMemoryBytes), o => o.MaxInMemoryBytes = 0 },
        { nameof(VaeOptions.Likelihood), o => o.Likelihood = VaeLikelihood.Gaussian },
        { nameof(VaeOptions.Epochs) + " (at least the checkpoint's epoch)", o => o.Epochs = 1 },
    };

    [Theory]
    [MemberData(nameof(Mismatches))]
    public void Resuming_with_options_that_do_not_match_the_checkpoint_names_the_option(string option, Action<VaeOptions> change)
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingRows(ml, rows: 64);
        using var folder = new TempFolder();
        var options = Options(epochs: 2);
        options.CheckpointDirectory = folder.Path;
        ml.Transforms.Vae(options).Fit(data).Dispose();

        var resume = Options(epochs: 3);
        resume.ResumeFrom = folder.File("checkpoint-epoch-0002.safetensors");
        change(resume);
        var fit = () => ml.Transforms.Vae(resume).Fit(data);

        fit.Should().Throw<ArgumentException>().Where(e => e.ParamName == option)
            .WithMessage($"ResumeFrom '{resume.ResumeFrom}' was trained with {option} *, but this run has *");
    }

    [Fact]
    public void Resuming_on_different_data_sizes_is_refused()
    {
        var ml = new MLContext(seed: 0);
        using var folder = new TempFolder();
        var options = Options(epochs: 1);
        options.CheckpointDirectory = folder.Path;
        ml.Transforms.Vae(options).Fit(TrainingRows(ml, rows: 64)).Dispose();

        var resume = Options(epochs: 2);
        resume.ResumeFrom = folder.File("checkpoint-epoch-0001.safetensors");
        var otherRows = () => ml.Transforms.Vae(resume).Fit(TrainingRows(ml, rows: 65));
        otherRows.Should().Throw<ArgumentException>().WithMessage("*training data rows 64, but this run has 65*");

        resume.ValidationData = TrainingRows(ml, rows: 10, seed: 3);
        var withValidation = () => ml.Transforms.Vae(resume).Fit(TrainingRows(ml, rows: 64));
        withValidation.Should().Throw<ArgumentException>().WithMessage("*ValidationData rows 0, but this run has 10*");
    }

    [Fact]
    public void A_corrupt_or_foreign_checkpoint_fails_with_InvalidDataException_naming_the_file()
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingRows(ml, rows: 64);
        using var folder = new TempFolder();
        var options = Options(epochs: 1);
        options.CheckpointDirectory = folder.Path;
        using var vae = ml.Transforms.Vae(options).Fit(data);
        var good = File.ReadAllBytes(folder.File("checkpoint-epoch-0001.safetensors"));

        void ShouldBeRejected(string name, byte[] bytes, string message)
        {
            var path = folder.File(name);
            File.WriteAllBytes(path, bytes);
            var resume = Options(epochs: 2);
            resume.ResumeFrom = path;
            var fit = () => ml.Transforms.Vae(resume).Fit(data);
            fit.Should().Throw<InvalidDataException>().WithMessage($"*'{Path.GetFullPath(path)}'*{message}*");
        }

        var flipped = (byte[])good.Clone();
        flipped[^100] ^= 0x01; // a bit in the tensor data: only the SHA-256 notices
        ShouldBeRejected("flipped.safetensors", flipped, "SHA-256");
        ShouldBeRejected("truncated.safetensors", good[..(good.Length / 2)], "");

        var model = folder.File("model.safetensors");
        vae.ExportSafetensors(model);
        ShouldBeRejected("model-as-checkpoint.safetensors", File.ReadAllBytes(model), "checkpoint");

        var missing = Options(epochs: 2);
        missing.ResumeFrom = folder.File("no-such-checkpoint.safetensors");
        ((Action)(() => ml.Transforms.Vae(missing).Fit(data))).Should().Throw<FileNotFoundException>().WithMessage("*no-such-checkpoint*");
    }

    [Fact]
    public void A_checkpoint_round_trips_every_value_exactly()
    {
        var ml = new MLContext(seed: 0);
        using var folder = new TempFolder();
        var options = Options(epochs: 2);
        options.CheckpointDirectory = folder.Path;
        options.ValidationData = TrainingRows(ml, rows: 32, seed: 5);
        using var vae = ml.Transforms.Vae(options).Fit(TrainingRows(ml, rows: 64));

        var (run, columns, state) = VaeCheckpoint.Read(folder.File("checkpoint-epoch-0002.safetensors"));

        columns.Should().Be(VaeTransformer.ColumnNames.From(options));
        (run.InputSize, run.LatentDimension, run.BatchSize, run.Seed, run.Epochs, run.TrainingRows, run.ValidationRows, run.Streamed, run.DeviceType)
            .Should().Be((SyntheticData.Width, 2, 32, 7L, 2, 64L, 32L, false, "cpu"));
        run.HiddenSizes.Should().Equal(32);
        state.Epoch.Should().Be(2);
        state.History.Should().Equal(vae.History, "the history, Seconds included, is the run's own");
        state.Parameters.Select(p => (p.Name, p.Values)).Should().BeEquivalentTo(
            vae.Model.GetParameters().Select(p => (p.Name, p.Values)), o => o.WithStrictOrdering());
        state.Optimizer.Should().OnlyContain(a => a.Step == 4, "2 epochs of 2 batches");
        state.Optimizer.Should().OnlyContain(a => a.ExpAvgSq.All(v => v >= 0) && a.ExpAvg.Any(v => v != 0));
        state.CpuGeneratorState.Should().HaveCount(5056, "libtorch's CPU (mt19937) generator state");
        state.DeviceGeneratorState.Should().BeNull();
    }

    [Fact]
    public void A_checkpoint_save_that_fails_at_any_byte_leaves_the_previous_checkpoint_and_no_temporary_file()
    {
        var ml = new MLContext(seed: 0);
        using var folder = new TempFolder();
        var options = Options(epochs: 2);
        options.CheckpointDirectory = folder.Path;
        options.KeepLastCheckpoints = null;
        ml.Transforms.Vae(options).Fit(TrainingRows(ml, rows: 64)).Dispose();
        var path = folder.File("checkpoint-epoch-0001.safetensors");
        var before = File.ReadAllBytes(path);
        var (run, columns, newer) = VaeCheckpoint.Read(folder.File("checkpoint-epoch-0002.safetensors"));
        var length = new MemoryStream();
        VaeCheckpoint.Write(length, run, columns, newer);

        // Fail the write of epoch 2's state over epoch 1's file at ~40 points spread over the file, the first and last bytes included.
        var points = Enumerable.Range(0, 40).Select(i => length.Length * i / 40).Append(length.Length - 1).Distinct();
        foreach (var failAt in points)
        {
            var save = () => AtomicFile.Write(path, stream => VaeCheckpoint.Write(new FailingStream(stream, failAt), run, columns, newer));

            save.Should().Throw<IOException>();
            File.ReadAllBytes(path).Should().Equal(before, $"a save failing at byte {failAt} must not touch the previous checkpoint");
            folder.FileNames().Should().Equal("checkpoint-epoch-0001.safetensors", "checkpoint-epoch-0002.safetensors");
        }

        VaeCheckpoint.Read(path).State.Epoch.Should().Be(1);
    }

    [Fact]
    public void Divergence_after_a_resume_leaves_the_checkpoint_it_resumed_from_untouched()
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingRows(ml, rows: 64);
        using var folder = new TempFolder();
        var options = Options(epochs: 2);
        options.CheckpointDirectory = folder.Path;
        ml.Transforms.Vae(options).Fit(data).Dispose();

        // A checkpoint whose log-variance bias makes exp(½ log σ²) overflow float32 on the next forward pass.
        var (run, columns, state) = VaeCheckpoint.Read(folder.File("checkpoint-epoch-0002.safetensors"));
        var poisoned = state.Parameters.Select(p => p.Name == "fc22.bias" ? (p.Name, p.Shape, p.Values.Select(_ => 400f).ToArray()) : p).ToList();
        using var bad = new TempFolder();
        var path = VaeCheckpoint.Save(bad.Path, run, columns, state with { Parameters = poisoned }, keepLast: null);
        var before = File.ReadAllBytes(path);

        var resume = Options(epochs: 4);
        resume.ResumeFrom = path;
        resume.CheckpointDirectory = bad.Path;
        var fit = () => ml.Transforms.Vae(resume).Fit(data);

        fit.Should().Throw<VaeTrainingDivergedException>().Where(e => e.Epoch == 3 && e.Batch == 1);
        bad.FileNames().Should().Equal("checkpoint-epoch-0002.safetensors");
        File.ReadAllBytes(path).Should().Equal(before);
    }
}
