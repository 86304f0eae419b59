using Microsoft.Extensions.Logging;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Tests.Core;

/// <summary>
/// The trainer's option rules at their bounds (the smallest value accepted and the first one refused) and the exact
/// text of its log lines. Written for the Stryker run on the root files (docs/testing.md, "Mutation testing"): the
/// other tests refuse values far from the bounds and read the log only by its first words.
/// </summary>
public class TrainerContractTests
{
    private sealed class SmallRow
    {
        [VectorType(4)]
        public float[] Features { get; set; } = [];
    }

    private static VaeOptions Options() => new() { HiddenSizes = [3], LatentDimension = 2, Epochs = 2, BatchSize = 8, Seed = 3, Device = "cpu" };

    private static readonly Dictionary<string, (Action<VaeOptions> Lowest, Action<VaeOptions> Refused)> Bounds = new()
    {
        [nameof(VaeOptions.Epochs)] = (o => o.Epochs = 1, o => o.Epochs = 0),
        [nameof(VaeOptions.BatchSize)] = (o => o.BatchSize = 1, o => o.BatchSize = 0),
        [nameof(VaeOptions.LearningRate)] = (o => o.LearningRate = double.Epsilon, o => o.LearningRate = 0),
        [nameof(VaeOptions.Beta)] = (o => o.Beta = 0, o => o.Beta = -double.Epsilon),
        [nameof(VaeOptions.KlWarmupEpochs)] = (o => o.KlWarmupEpochs = 0, o => o.KlWarmupEpochs = -1),
        [nameof(VaeOptions.EarlyStoppingPatience)] = (o => o.EarlyStoppingPatience = 1, o => o.EarlyStoppingPatience = 0),
        [nameof(VaeOptions.BatchProgressInterval)] = (o => o.BatchProgressInterval = TimeSpan.Zero, o => o.BatchProgressInterval = TimeSpan.FromTicks(-1)),
        [nameof(VaeOptions.MaxInMemoryBytes)] = (o => o.MaxInMemoryBytes = 0, o => o.MaxInMemoryBytes = -1),
        [nameof(VaeOptions.CheckpointEveryEpochs)] = (o => o.CheckpointEveryEpochs = 1, o => o.CheckpointEveryEpochs = 0),
        [nameof(VaeOptions.KeepLastCheckpoints)] = (o => o.KeepLastCheckpoints = 1, o => o.KeepLastCheckpoints = 0),
    };

    public static TheoryData<string> BoundedOptions => new(Bounds.Keys);

    [Theory]
    [MemberData(nameof(BoundedOptions))]
    public void Each_option_accepts_its_bound_and_refuses_the_next_value_by_name(string option)
    {
        var ml = new MLContext();
        var lowest = Options();
        Bounds[option].Lowest(lowest);
        ((Action)(() => ml.Transforms.Vae(lowest))).Should().NotThrow();

        var refused = Options();
        Bounds[option].Refused(refused);
        ((Action)(() => ml.Transforms.Vae(refused))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be(option);
    }

    [Theory]
    [InlineData(nameof(VaeOptions.LearningRate), double.PositiveInfinity)]
    [InlineData(nameof(VaeOptions.LearningRate), double.NaN)]
    [InlineData(nameof(VaeOptions.LearningRate), -1e-3)]
    [InlineData(nameof(VaeOptions.Beta), double.PositiveInfinity)]
    [InlineData(nameof(VaeOptions.Beta), double.NaN)]
    public void Learning_rate_and_beta_must_be_finite(string option, double value)
    {
        var options = Options();
        typeof(VaeOptions).GetProperty(option)!.SetValue(options, value);
        ((Action)(() => new MLContext().Transforms.Vae(options))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be(option);
    }

    [Fact]
    public void Checkpoint_and_resume_paths_and_the_likelihood_are_checked_when_the_trainer_is_made()
    {
        var ml = new MLContext();
        var file = Path.GetTempFileName();
        try
        {
            foreach (var (directory, what) in new[] { ("  ", "nothing"), (file, "a file") })
            {
                var options = Options();
                options.CheckpointDirectory = directory;
                ((Action)(() => ml.Transforms.Vae(options))).Should().Throw<ArgumentException>()
                    .WithMessage($"CheckpointDirectory '{directory}' must name a folder, not {what}.*")
                    .Which.ParamName.Should().Be(nameof(VaeOptions.CheckpointDirectory));
            }

            var resume = Options();
            resume.ResumeFrom = " ";
            ((Action)(() => ml.Transforms.Vae(resume))).Should().Throw<ArgumentException>()
                .Which.ParamName.Should().Be(nameof(VaeOptions.ResumeFrom));

            var likelihood = Options();
            likelihood.Likelihood = (VaeLikelihood)7;
            ((Action)(() => ml.Transforms.Vae(likelihood))).Should().Throw<ArgumentOutOfRangeException>()
                .Which.ParamName.Should().Be(nameof(VaeOptions.Likelihood));

            var fine = Options();
            fine.CheckpointDirectory = Path.Combine(Path.GetTempPath(), "not-created-until-fit");
            fine.ResumeFrom = file; // read only by Fit
            fine.Likelihood = VaeLikelihood.Gaussian;
            ((Action)(() => ml.Transforms.Vae(fine))).Should().NotThrow();
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Null_arguments_are_refused_by_name_at_the_catalog_Fit_and_GetOutputSchema()
    {
        var ml = new MLContext();
        ((Action)(() => ml.Transforms.Vae((VaeOptions)null!))).Should().Throw<ArgumentNullException>().WithParameterName("options");
        ((Action)(() => VaeCatalog.Vae(null!, Options()))).Should().Throw<ArgumentNullException>().WithParameterName("catalog");

        var trainer = ml.Transforms.Vae(Options());
        trainer.Invoking(t => t.Fit(null!)).Should().Throw<ArgumentNullException>().WithParameterName("input");
        trainer.Invoking(t => t.GetOutputSchema(null!)).Should().Throw<ArgumentNullException>().WithParameterName("inputSchema");
    }

    [Fact]
    public void The_trainer_copies_its_options_so_later_changes_do_not_reach_it()
    {
        var ml = new MLContext(seed: 0);
        var options = Options();
        options.Epochs = 1;
        var trainer = ml.Transforms.Vae(options);
        options.Epochs = 0;
        options.LatentDimension = 3;
        options.HiddenSizes[0] = 5; // the array too, not only the reference

        using var vae = trainer.Fit(ml.Data.LoadFromEnumerable(Rows(10, seed: 1)));

        vae.History.Should().HaveCount(1);
        vae.LatentDimension.Should().Be(2);
        vae.HiddenSizes.Should().Equal(3);
    }

    [Fact]
    public void The_first_log_line_names_the_run_and_each_epoch_line_its_losses_in_invariant_culture()
    {
        var ml = new MLContext(seed: 0);
        var logger = new ListLogger();
        var reported = new List<VaeEpochMetrics>();
        var options = Options();
        options.Logger = logger;
        options.KlWarmupEpochs = 2;
        options.EarlyStoppingPatience = 5;
        options.LearningRate = 0.0025;
        options.Beta = 0.5;
        options.ValidationData = ml.Data.LoadFromEnumerable(Rows(6, seed: 2));
        options.Progress = new Reporter(reported.Add);

        var culture = System.Globalization.CultureInfo.CurrentCulture;
        System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
        try
        {
            using var vae = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(Rows(20, seed: 1)));
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = culture;
        }

        logger.Messages.Should().HaveCount(3);
        logger.Messages[0].Should().Be(
            "Training VAE 4-3-2 on 20 rows (in memory), device cpu (Device = \"cpu\"), 2 epochs, batch 8, lr 0.0025, beta 0.5, seed 3, " +
            "KL warm-up over 2 epochs, early stopping after 5 epochs without improvement.");
        reported.Should().HaveCount(2);
        for (var i = 0; i < 2; i++)
        {
            var m = reported[i];
            var since = m.EpochsWithoutImprovement == 0 ? ", new best" : $", {m.EpochsWithoutImprovement} epoch(s) without improvement";
            logger.Messages[i + 1].Should().Be(FormattableString.Invariant(
                $"Epoch {i + 1}/2: train loss {m.TrainLoss:F4} (reconstruction {m.TrainReconstructionLoss:F4}, KL {m.TrainKlDivergence:F4}), validation loss {m.ValidationLoss:F4} (at mean {m.ValidationLossAtMean:F4}){since}, {m.Seconds:F2} s"));
        }

        reported[0].EpochsWithoutImprovement.Should().Be(0, "the first epoch is always the best so far");
    }

    [Fact]
    public void A_run_without_controls_logs_neither_them_nor_validation()
    {
        var ml = new MLContext(seed: 0);
        var logger = new ListLogger();
        var options = Options();
        options.Epochs = 1;
        options.Logger = logger;
        options.MaxInMemoryBytes = 0;

        using var vae = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(Rows(9, seed: 1)));

        logger.Messages.Should().HaveCount(2);
        logger.Messages[0].Should().Be("Training VAE 4-3-2 on 9 rows (streamed), device cpu (Device = \"cpu\"), 1 epochs, batch 8, lr 0.001, beta 1, seed 3.");
        logger.Messages[1].Should().MatchRegex(@"^Epoch 1/1: train loss \d+\.\d{4} \(reconstruction \d+\.\d{4}, KL \d+\.\d{4}\), \d+\.\d{2} s$");
    }

    [Theory]
    [InlineData(320, "in memory")]
    [InlineData(319, "streamed")]
    public void Training_data_of_exactly_MaxInMemoryBytes_is_held_in_memory_and_one_byte_less_streams(long maxBytes, string how)
    {
        // 20 rows of 4 floats are 320 bytes: the documented rule streams data "larger than" MaxInMemoryBytes.
        var ml = new MLContext(seed: 0);
        var logger = new ListLogger();
        var options = Options();
        options.Epochs = 1;
        options.Logger = logger;
        options.MaxInMemoryBytes = maxBytes;

        using var vae = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(Rows(20, seed: 1)));

        logger.Messages[0].Should().StartWith($"Training VAE 4-3-2 on 20 rows ({how}), ");
    }

    [Fact]
    public void A_resumed_run_logs_the_epoch_and_the_file_it_resumes_from()
    {
        var ml = new MLContext(seed: 0);
        var folder = Path.Combine(Path.GetTempPath(), $"vae-resume-log-{Guid.NewGuid():N}");
        try
        {
            var first = Options();
            first.CheckpointDirectory = folder;
            using (ml.Transforms.Vae(first).Fit(ml.Data.LoadFromEnumerable(Rows(12, seed: 1))))
            {
            }

            var checkpoint = Path.Combine(folder, "checkpoint-epoch-0002.safetensors");
            File.Exists(checkpoint).Should().BeTrue();
            var logger = new ListLogger();
            var resumed = Options();
            resumed.Epochs = 3;
            resumed.ResumeFrom = folder;
            resumed.CheckpointDirectory = folder;
            resumed.Logger = logger;
            using var vae = ml.Transforms.Vae(resumed).Fit(ml.Data.LoadFromEnumerable(Rows(12, seed: 1)));

            logger.Messages[0].Should().EndWith($", seed 3, resuming after epoch 2 from '{checkpoint}'.");
            logger.Messages.Should().HaveCount(2, "one line for the run and one for the single epoch left");
            vae.History.Select(m => m.Epoch).Should().Equal(1, 2, 3);
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    [Theory]
    [InlineData(nameof(VaeOptions.FeatureColumnName), "")]
    [InlineData(nameof(VaeOptions.LatentColumnName), " ")]
    [InlineData(nameof(VaeOptions.LatentLogVarianceColumnName), "")]
    [InlineData(nameof(VaeOptions.ReconstructionColumnName), "\t")]
    [InlineData(nameof(VaeOptions.ScoreColumnName), "")]
    public void A_blank_column_name_is_refused_by_its_option(string option, string name)
    {
        var options = Options();
        typeof(VaeOptions).GetProperty(option)!.SetValue(options, name);
        ((Action)(() => new MLContext().Transforms.Vae(options))).Should().Throw<ArgumentException>()
            .WithMessage($"{option} must be a non-empty column name.*").Which.ParamName.Should().Be(option);
    }

    [Fact]
    public void The_divergence_message_names_the_epoch_batch_and_learning_rate_in_invariant_culture()
    {
        var culture = System.Globalization.CultureInfo.CurrentCulture;
        System.Globalization.CultureInfo.CurrentCulture = new System.Globalization.CultureInfo("de-DE");
        try
        {
            var error = new VaeTrainingDivergedException(3, 7, 0.5, "the loss is NaN");

            error.Message.Should().Be("VAE training diverged at epoch 3, batch 7 (learning rate 0.5): the loss is NaN. No model was returned. " +
                "Try a lower LearningRate (the report uses 1e-3) or a smaller Beta.");
            (error.Epoch, error.Batch, error.LearningRate).Should().Be((3, 7, 0.5));
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = culture;
        }
    }

    [Fact]
    public void Batch_progress_gives_the_fraction_of_the_epochs_rows_done()
    {
        new VaeBatchProgress { Rows = 3, TotalRows = 12 }.EpochFraction.Should().Be(0.25);
        new VaeBatchProgress { Rows = 12, TotalRows = 12 }.EpochFraction.Should().Be(1);
        new VaeBatchProgress { Rows = 0, TotalRows = 0 }.EpochFraction.Should().Be(1, "an epoch without rows is done");
    }

    private static SmallRow[] Rows(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(_ => new SmallRow { Features = Enumerable.Range(0, 4).Select(_ => (float)random.NextDouble()).ToArray() })
            .ToArray();
    }

    private sealed class Reporter(Action<VaeEpochMetrics> report) : IProgress<VaeEpochMetrics>
    {
        public void Report(VaeEpochMetrics value) => report(value);
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Messages.Add(formatter(state, exception));
    }
}
