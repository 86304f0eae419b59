using Vae.ML.Samples.Bench;

namespace Vae.ML.Tests.Samples;

/// <summary>One quick bench run (a few hundred synthetic rows, its child processes, PyTorch when available) shared by the tests.</summary>
public sealed class BenchQuickRun : IDisposable
{
    public BenchQuickRun()
    {
        Cli.Result result = Cli.Run("bench", "--quick", "--synthetic", "--out", Folder);
        (ExitCode, Output, Error) = (result.ExitCode, result.Output, result.Error);
    }

    public string Folder { get; } = Path.Combine(Path.GetTempPath(), $"vae-ml-bench-test-{Guid.NewGuid():N}");

    public int ExitCode { get; }

    public string Output { get; }

    public string Error { get; }

    public void Dispose()
    {
        if (Directory.Exists(Folder))
        {
            Directory.Delete(Folder, recursive: true);
        }
    }
}

/// <summary>
/// The bench's quick mode, run end to end in-process (its children too): proves that every measure runs and that its
/// outputs are complete and sane. Nothing here asserts on a time: timing belongs to the bench itself.
/// </summary>
public sealed class BenchQuickModeTests(BenchQuickRun run) : IClassFixture<BenchQuickRun>
{
    private readonly string _folder = run.Folder;

    [Fact]
    public void Quick_bench_measures_every_row_and_writes_json_markdown_and_plots()
    {
        run.ExitCode.Should().Be(0, run.Error);
        run.Output.Should().Contain("| training epoch").And.Contain("PredictionEngine").And.Contain("Wrote");
        BenchReport report = BenchReport.Load(Path.Combine(_folder, BenchOutput.JsonFile));
        report.Sizes.Quick.Should().BeTrue();

        // The main measure: one Vae.ML epoch and one floor per repeat, PyTorch either per repeat too or plainly skipped.
        report.Epoch.VaeMl.Count.Should().Be(report.Sizes.Repeats);
        report.Epoch.GemmFloor.Count.Should().Be(report.Sizes.Repeats);
        AllPositive(report.Epoch.VaeMl, report.Epoch.GemmFloor);
        report.Epoch.VaeMlOverFloor.Should().BeGreaterThan(0);
        if (report.PyTorchSkipped is null)
        {
            report.Epoch.PyTorch!.Count.Should().Be(report.Sizes.Repeats);
            report.Epoch.PyTorchOverVaeMl.Should().BeGreaterThan(0);
            report.Memory.PyTorchMegabytes.Should().BeGreaterThan(0);
        }
        else
        {
            report.Epoch.PyTorch.Should().BeNull();
            report.Notes.Should().Contain(n => n.Contains("PyTorch was NOT run"));
        }

        report.EpochByRows.Select(m => m.Rows).Should().Equal(report.Sizes.ScalingRows);
        report.EpochByBatch.Select(m => m.BatchSize).Should().Equal(report.Sizes.ScalingBatches);
        report.Extraction.Select(m => m.Rows).Should().Equal(report.Sizes.ExtractionRows);
        report.Extraction.Should().OnlyContain(m => m.RowsPerSecond.Median > 0 && m.EncoderLimitRowsPerSecond.Median > 0 && m.SourceRowsPerSecond!.Median > 0);
        report.Prediction.Calls.Should().Be(report.Sizes.PredictionCalls);
        report.Prediction.P99Microseconds.Should().BeGreaterThanOrEqualTo(report.Prediction.MedianMicroseconds).And.BeGreaterThan(0);

        // Streamed training ran in this process and in one child per row count, each reporting its own peak.
        AllPositive(report.Stream.InMemory, report.Stream.Streamed);
        report.Stream.PeakRssByRows.Select(p => p.Rows).Should().Equal(report.Sizes.StreamRows);
        report.Stream.PeakRssByRows.Should().OnlyContain(p => p.PeakRssMegabytes > 50 && p.EpochSeconds > 0 && p.ManagedRetainedMegabytes > 0 && p.ManagedAllocatedMegabytes >= p.ManagedRetainedMegabytes);
        report.Memory.ReportRunMegabytes.Should().BeNull("a report needs MNIST, and this run is synthetic");
        report.Notes.Should().Contain(n => n.Contains("report run was not measured: the report needs MNIST"));

        // The other architectures and likelihoods, each trained, read and served once, with its PyTorch twin when PyTorch runs.
        report.Variants!.Select(v => (v.Architecture, v.Likelihood)).Should().Equal(
            (VaeArchitecture.Mlp, VaeLikelihood.Gaussian), (VaeArchitecture.Convolutional, VaeLikelihood.Bernoulli), (VaeArchitecture.Convolutional, VaeLikelihood.Gaussian));
        foreach (VariantMeasure variant in report.Variants!)
        {
            variant.Rows.Should().Be(report.Sizes.VariantRows);
            variant.VaeMl.Count.Should().Be(2, "quick mode trains two epochs");
            AllPositive(variant.VaeMl, variant.ExtractionRowsPerSecond);
            variant.PredictionP99Microseconds.Should().BeGreaterThanOrEqualTo(variant.PredictionMedianMicroseconds).And.BeGreaterThan(0);
            if (report.PyTorchSkipped is null)
            {
                variant.PyTorch!.Count.Should().Be(2, "the twin runs one epoch after each of Vae.ML's");
                variant.PyTorchOverVaeMl.Should().BeGreaterThan(0);
            }
        }

        StepProfile profile = report.Profile;
        new[] { profile.Data, profile.Forward, profile.ForwardGemms, profile.Backward, profile.BackwardGemms, profile.Checks, profile.Optimizer, profile.FixedCostPerStep }
            .Should().OnlyContain(ms => ms > 0 && double.IsFinite(ms));

        string markdown = File.ReadAllText(Path.Combine(_folder, BenchOutput.MarkdownFile));
        markdown.Should().Contain("QUICK mode").And.Contain("Where a training step's time goes").And.Contain("Latent extraction vs rows")
            .And.Contain("Other architectures and likelihoods").And.Contain("| Convolutional | Gaussian |");
        foreach (string plot in new[] { BenchOutput.RowsPlot, BenchOutput.BatchPlot, BenchOutput.ExtractionPlot, BenchOutput.StreamPlot })
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(_folder, plot));
            bytes.Take(8).Should().Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, $"{plot} is a PNG");
        }
    }

    [Fact]
    public void Render_rewrites_the_tables_and_plots_of_a_saved_run_without_measuring()
    {
        run.ExitCode.Should().Be(0, run.Error);
        string rendered = Path.Combine(_folder, "rendered");

        Cli.Result result = Cli.Run("bench", "--render", Path.Combine(_folder, BenchOutput.JsonFile), "--out", rendered);

        result.ExitCode.Should().Be(0, result.Error);
        File.ReadAllText(Path.Combine(rendered, BenchOutput.MarkdownFile)).Should().Be(File.ReadAllText(Path.Combine(_folder, BenchOutput.MarkdownFile)));
        File.Exists(Path.Combine(rendered, BenchOutput.RowsPlot)).Should().BeTrue();
        Cli.Run("bench", "--render", Path.Combine(_folder, "missing.json")).Error.Should().Contain("missing.json");
    }

    private static void AllPositive(params Spread[] spreads) =>
        spreads.Should().OnlyContain(s => s.Min > 0 && s.Median >= s.Min && s.Max >= s.Median && double.IsFinite(s.Max));
}

public class BenchPartsTests
{
    [Fact]
    public void Spread_takes_median_and_range_and_percentiles_interpolate()
    {
        Spread spread = Spread.Of([5, 1, 3, 2, 4]);

        spread.Should().Be(new Spread(3, 1, 5, 5));
        Spread.Of([1, 2, 3, 4]).Median.Should().Be(2.5);
        Spread.Percentile(Enumerable.Range(1, 101).Select(i => (double)i).ToArray(), 0.99).Should().Be(100);
        spread.Scale(1000).Should().Be(new Spread(3000, 1000, 5000, 5));
        FluentActions.Invoking(() => Spread.Of([])).Should().Throw<ArgumentException>();
    }

    [Fact]
    public void Cycling_view_serves_source_row_i_mod_n_for_any_row_count()
    {
        float[] source = [0, 0, 1, 1, 2, 2];
        var view = new CyclingImagesView(source, 2, 7);
        var ml = new Microsoft.ML.MLContext();

        float[][] rows = ml.Data.CreateEnumerable<Row>(view, reuseRowObject: false).Select(r => r.Features).ToArray();

        view.GetRowCount().Should().Be(7);
        rows.Select(r => r[0]).Should().Equal(0, 1, 2, 0, 1, 2, 0);
        rows.Should().OnlyContain(r => r.Length == 2 && r[0] == r[1]);
    }

    [Fact]
    public void Child_process_reports_exit_code_output_and_a_peak_rss()
    {
        ChildResult result = ChildProcess.Run("/bin/sh", ["-c", "echo hello; exit 3"], TimeSpan.FromSeconds(30), CancellationToken.None);

        result.ExitCode.Should().Be(3);
        result.Output.Trim().Should().Be("hello");
        ChildProcess.ReadPeakMegabytes("/proc/self/status").Should().BeGreaterThan(1);
        ChildProcess.ReadPeakMegabytes("/no/such/status").Should().BeNull();
    }

    [Fact]
    public void A_missing_python_is_reported_as_a_reason_not_an_exception()
    {
        BenchImages images = BenchImages.Synthetic(4, 2);

        PyTorchContender? contender = PyTorchContender.TryStart("/no/such/python3", images, 1, out string? whyNot);

        contender.Should().BeNull();
        whyNot.Should().Contain("/no/such/python3");
    }

    [Fact]
    public void Synthetic_images_have_mnist_shape_and_range()
    {
        BenchImages images = BenchImages.Synthetic(10, 3);

        (images.TrainRows, images.TestRows, images.Width).Should().Be((10, 3, 784));
        images.Train.Should().OnlyContain(v => v >= 0 && v <= 1);
        images.Train.Count(v => v > 0).Should().BeGreaterThan(10 * 20, "every image has a stroke");
    }

    [Theory]
    [InlineData("--threads", "0")]
    [InlineData("--repeats", "0")]
    [InlineData("--batch-size", "-1")]
    public void Bench_rejects_non_positive_sizes(string option, string value)
    {
        Cli.Result result = Cli.Run("bench", "--quick", option, value);

        result.ExitCode.Should().NotBe(0);
        result.Error.Should().Contain(option);
    }

    private sealed class Row
    {
        [Microsoft.ML.Data.VectorType(2)]
        public float[] Features { get; set; } = [];
    }
}
