using System.Diagnostics;
using Microsoft.ML;
using TorchSharp;
using Vae.ML.Tests.Core;
using Vae.ML.Torch;
using static Vae.ML.Tests.Reliability.TrainingTestSupport;

namespace Vae.ML.Tests.Reliability;

/// <summary>Training that goes wrong is stopped with a clear exception, never returned as a model.</summary>
public class TrainingReliabilityTests
{
    public static TheoryData<string, Action<VaeOptions>> OutOfDomain => new()
    {
        { nameof(VaeOptions.LearningRate), o => o.LearningRate = 0 },
        { nameof(VaeOptions.LearningRate), o => o.LearningRate = -1e-3 },
        { nameof(VaeOptions.LearningRate), o => o.LearningRate = double.NaN },
        { nameof(VaeOptions.LearningRate), o => o.LearningRate = double.PositiveInfinity },
        { nameof(VaeOptions.Beta), o => o.Beta = -0.5 },
        { nameof(VaeOptions.Beta), o => o.Beta = double.NaN },
        { nameof(VaeOptions.Beta), o => o.Beta = double.PositiveInfinity },
        { nameof(VaeOptions.BatchSize), o => o.BatchSize = 0 },
        { nameof(VaeOptions.Epochs), o => o.Epochs = 0 },
        { nameof(VaeOptions.LatentDimension), o => o.LatentDimension = 0 },
        { nameof(VaeOptions.HiddenSizes), o => o.HiddenSizes = [] },
        { nameof(VaeOptions.HiddenSizes), o => o.HiddenSizes = [16, 0] },
        { nameof(VaeOptions.HiddenSizes), o => o.HiddenSizes = [-4] },
        { nameof(VaeOptions.Device), o => o.Device = "gpu" },
        { nameof(VaeOptions.Device), o => o.Device = "cuda:x" },
        { nameof(VaeOptions.CheckpointEveryEpochs), o => o.CheckpointEveryEpochs = 0 },
        { nameof(VaeOptions.KeepLastCheckpoints), o => o.KeepLastCheckpoints = 0 },
        { nameof(VaeOptions.CheckpointDirectory), o => o.CheckpointDirectory = " " },
        { nameof(VaeOptions.ResumeFrom), o => o.ResumeFrom = "" },
    };

    [Theory]
    [MemberData(nameof(OutOfDomain))]
    public void Options_outside_their_domain_fail_at_the_catalog_call_naming_the_option(string option, Action<VaeOptions> spoil)
    {
        var ml = new MLContext(seed: 0);
        var options = Options();
        spoil(options);

        var create = () => ml.Transforms.Vae(options);

        create.Should().Throw<ArgumentException>().Which.ParamName.Should().Be(option);
    }

    [Fact]
    public void The_short_catalog_overload_checks_its_arguments_too()
    {
        var ml = new MLContext(seed: 0);

        ((Action)(() => ml.Transforms.Vae(learningRate: double.NaN))).Should().Throw<ArgumentException>().Which.ParamName.Should().Be(nameof(VaeOptions.LearningRate));
        ((Action)(() => ml.Transforms.Vae(batchSize: 0))).Should().Throw<ArgumentException>().Which.ParamName.Should().Be(nameof(VaeOptions.BatchSize));
        ((Action)(() => ml.Transforms.Vae(epochs: -1))).Should().Throw<ArgumentException>().Which.ParamName.Should().Be(nameof(VaeOptions.Epochs));
        ((Action)(() => ml.Transforms.Vae(latentDimension: 0))).Should().Throw<ArgumentException>().Which.ParamName.Should().Be(nameof(VaeOptions.LatentDimension));
    }

    [Fact]
    public void A_batch_larger_than_the_data_trains_on_one_batch_per_epoch()
    {
        var ml = new MLContext(seed: 0);
        var data = TrainingRows(ml, rows: 10);
        var large = Options(epochs: 2);
        large.BatchSize = 128;
        var exact = Options(epochs: 2);
        exact.BatchSize = 10;

        using var withLargeBatch = ml.Transforms.Vae(large).Fit(data);
        using var withExactBatch = ml.Transforms.Vae(exact).Fit(data);

        // One batch of all 10 rows either way: the same draws, so the same model.
        withLargeBatch.ShouldHaveIdenticalWeights(withExactBatch);
        withLargeBatch.ShouldHaveIdenticalHistory(withExactBatch);
    }

    [Fact]
    public void Empty_training_data_is_a_clear_error_and_a_single_row_trains()
    {
        var ml = new MLContext(seed: 0);
        var empty = () => ml.Transforms.Vae(Options()).Fit(ml.Data.LoadFromEnumerable(Array.Empty<SyntheticData.Row>()));
        empty.Should().Throw<ArgumentException>().WithMessage("*no rows*'Features'*");

        using var single = ml.Transforms.Vae(Options(epochs: 2)).Fit(TrainingRows(ml, rows: 1));

        single.History.Should().HaveCount(2);
        single.History.Should().OnlyContain(h => double.IsFinite(h.TrainLoss));
        Weights(single).Values.SelectMany(v => v).Should().OnlyContain(v => float.IsFinite(v));
    }

    [Fact]
    public void A_diverging_run_stops_at_the_first_bad_batch_with_epoch_batch_and_learning_rate()
    {
        var ml = new MLContext(seed: 0);
        using var folder = new TempFolder();
        var options = Options(epochs: 3);
        options.LearningRate = 1e10;
        options.CheckpointDirectory = folder.Path;
        var epochsReported = 0;
        options.Progress = new Reporter<VaeEpochMetrics>(_ => epochsReported++);
        var liveBefore = LiveTensors();

        var fit = () => ml.Transforms.Vae(options).Fit(TrainingRows(ml));

        // Batch 1's update is finite but huge; batch 2's forward pass overflows.
        var error = fit.Should().Throw<VaeTrainingDivergedException>().Which;
        error.Should().BeAssignableTo<InvalidOperationException>();
        (error.Epoch, error.Batch, error.LearningRate).Should().Be((1, 2, 1e10));
        error.Message.Should().Contain("epoch 1, batch 2").And.Contain("learning rate 10000000000").And.Contain("LearningRate");
        epochsReported.Should().Be(0);
        folder.FileNames().Should().BeEmpty("no checkpoint may be written from a diverged run");
        LiveTensors().Should().Be(liveBefore, "the half-trained network is disposed");
    }

    [Fact]
    public void Gradient_check_finds_a_NaN_or_infinite_gradient_anywhere()
    {
        using var layer = torch.nn.Linear(3, 2);
        using var optimizer = new FlatAdam(layer.named_parameters(), 1e-3);
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1f })
        {
            optimizer.ZeroGrad();
            using (var input = torch.ones(1, 3))
            using (var output = layer.forward(input))
            using (var scaled = output.sum() * bad)
            {
                scaled.backward();
            }

            using var largest = optimizer.LargestGradientMagnitude();
            float.IsFinite(largest.item<float>()).Should().Be(float.IsFinite(bad), $"gradients scaled by {bad}");
        }
    }

    [Fact]
    public void A_data_view_that_throws_midway_surfaces_with_the_column_and_rows_read_and_no_model()
    {
        var ml = new MLContext(seed: 0);
        var rows = SyntheticData.Rows(200);

        // Enumeration 1 counts the rows; enumeration 2 reads them into memory and fails at row 57.
        var failing = new InstrumentedRows(rows, (enumeration, row) =>
        {
            if (enumeration == 2 && row == 57)
            {
                throw new IOException("disk went away (simulated)");
            }
        });
        var liveBefore = LiveTensors();

        var fit = () => ml.Transforms.Vae(Options()).Fit(ml.Data.LoadFromEnumerable(failing));

        var error = fit.Should().Throw<InvalidOperationException>()
            .WithMessage("Training data, column 'Features': the data view failed after 57 rows were read (IOException: disk went away (simulated)).")
            .Which;
        error.InnerException.Should().BeOfType<IOException>();
        LiveTensors().Should().Be(liveBefore);
    }

    [Fact]
    public void A_streamed_data_view_that_throws_in_a_later_epoch_leaves_no_model_behind()
    {
        var ml = new MLContext(seed: 0);
        var rows = SyntheticData.Rows(200);

        // Enumerations: 1 count, 2 validation pass, 3 epoch 1, 4 epoch 2 (fails at row 120).
        var failing = new InstrumentedRows(rows, (enumeration, row) =>
        {
            if (enumeration == 4 && row == 120)
            {
                throw new IOException("network share dropped (simulated)");
            }
        });
        var options = Options(epochs: 3);
        options.MaxInMemoryBytes = 0;
        var epochs = 0;
        options.Progress = new Reporter<VaeEpochMetrics>(_ => epochs++);
        var liveBefore = LiveTensors();

        var fit = () => ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(failing));

        fit.Should().Throw<InvalidOperationException>()
            .WithMessage("Training data, column 'Features': the data view failed after 120 rows were read*")
            .WithInnerException<IOException>();
        epochs.Should().Be(1);
        LiveTensors().Should().Be(liveBefore, "the network and optimizer of the failed run are disposed");
    }

    [Fact]
    public void Cancelling_mid_epoch_leaves_the_process_able_to_train_the_same_model_again()
    {
        var ml = new MLContext(seed: 0);
        var rows = SyntheticData.Rows(256);
        var options = Options(epochs: 3);
        options.MaxInMemoryBytes = 0; // streamed, so a data view can cancel in the middle of an epoch

        using var neverCancelled = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(rows));
        var threadsBefore = Process.GetCurrentProcess().Threads.Count;

        for (var attempt = 0; attempt < 3; attempt++)
        {
            using var cts = new CancellationTokenSource();

            // Enumerations: 1 count, 2 validation pass, 3 epoch 1, 4 epoch 2: cancel at row 100 of epoch 2.
            var cancelling = new InstrumentedRows(rows, (enumeration, row) =>
            {
                if (enumeration == 4 && row == 100)
                {
                    cts.Cancel();
                }
            });
            var epochs = 0;
            var cancelledOptions = Options(epochs: 3);
            cancelledOptions.MaxInMemoryBytes = 0;
            cancelledOptions.Progress = new Reporter<VaeEpochMetrics>(_ => epochs++);

            var fit = () => ml.Transforms.Vae(cancelledOptions).Fit(ml.Data.LoadFromEnumerable(cancelling), cts.Token);

            fit.Should().Throw<OperationCanceledException>();
            epochs.Should().Be(1, "cancellation stops epoch 2 before it ends");
        }

        // Training runs on the caller's thread: cancelling leaves no worker behind (slack for the runtime's own pools).
        Process.GetCurrentProcess().Threads.Count.Should().BeLessThanOrEqualTo(threadsBefore + 4);
        using var again = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(rows));
        again.ShouldHaveIdenticalWeights(neverCancelled);
        again.ShouldHaveIdenticalHistory(neverCancelled);
    }

    [Fact]
    public void Training_five_models_in_a_row_does_not_grow_memory()
    {
        var ml = new MLContext(seed: 0);

        // Big enough that leaking the training set per run would show in the RSS (4,000 rows × 784 = 12.5 MB), with a
        // narrow network so that the five runs stay quick.
        var random = new Random(3);
        var rows = Enumerable.Range(0, 4000).Select(_ => new WideRow
        {
            Features = Enumerable.Range(0, 784).Select(_ => (float)random.NextDouble()).ToArray(),
        }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = Options(epochs: 1);
        options.HiddenSizes = [16];
        options.BatchSize = 128;

        var live = new List<long>();
        var rss = new List<long>();
        for (var run = 0; run < 5; run++)
        {
            using (var vae = ml.Transforms.Vae(options).Fit(data))
            {
                vae.History.Should().HaveCount(1);
            }

            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            live.Add(LiveTensors());
            using var process = Process.GetCurrentProcess();
            rss.Add(process.WorkingSet64);
        }

        live.Should().AllBeEquivalentTo(live[0], "every tensor a training run creates is disposed with it");

        // The first runs warm up allocator pools, and the RSS moves by up to ~10 MB between runs without any leak (measured);
        // a leaked training set would add 3 × 12.5 MB from run 2 to run 5.
        (rss[4] - rss[1]).Should().BeLessThan(24L << 20, $"RSS after each run: {string.Join(", ", rss.Select(r => $"{r >> 20} MB"))}");
    }

    private sealed class WideRow
    {
        [Microsoft.ML.Data.VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    /// <summary>Tensors alive on this thread, by TorchSharp's dispose-scope statistics.</summary>
    private static long LiveTensors() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
}
