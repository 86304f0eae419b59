using System.Text.Json;
using Vae.ML.Samples.Analysis;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Tests.Samples;

public class ReportingTests
{
    private static ReportMetrics Metrics(int trainImages = 60_000, int epochs = 20)
    {
        List<EpochRecord> history = Enumerable.Range(1, epochs).Select(e => new EpochRecord
        {
            Epoch = e,
            TrainLoss = 149 + 40.0 / e,
            TrainReconstructionLoss = 143 + 41.0 / e,
            TrainKlDivergence = 6 - 1.0 / e,
            TestLoss = 150.5 + 20.0 / e,
            TestLossAtMean = 149.5 + 20.0 / e,
            Seconds = 3,
        }).ToList();
        return new ReportMetrics
        {
            Configuration = new RunConfiguration
            {
                Dataset = "mnist",
                LatentDimension = 2,
                HiddenSizes = [400],
                Epochs = epochs,
                BatchSize = 128,
                LearningRate = 1e-3,
                Beta = 1,
                Seed = 0,
                RequestedDevice = "auto",
                TrainImages = trainImages,
                TestImages = 10_000,
            },
            Epochs = history,
            FinalTrainLoss = history[^1].TrainLoss,
            FinalTestLoss = history[^1].TestLoss,
            FinalTestLossAtMean = history[^1].TestLossAtMean,
            MeanSecondsPerEpoch = 3,
            MedianSecondsPerEpoch = 3,
            TotalTrainingSeconds = 3 * epochs,
            Device = "cpu",
            Versions = new SoftwareVersions { VaeMl = "0.1.0", TorchSharp = "0.107.0", MlNet = "5.0.1", DotNet = ".NET 10", OperatingSystem = "Linux", ProcessorCount = 2, Processor = "Test CPU" },
            TrainingCurve = TrainingCurveAnalysis.Summarize(history),
            LatentSeparation = new LatentSeparationSummary
            {
                Dimensions = 2, Images = 10_000, NeighbourCount = 5, NearestNeighbourAccuracy = 0.8, Silhouette = 0.1,
                NearestNeighbourAccuracyPerLabel = [0.95, 0.99, 0.7, 0.6, 0.4, 0.3, 0.9, 0.92, 0.6, 0.45],
            },
            Readability = new ReadabilitySummary
            {
                NeighbourCount = 10, AgreementThreshold = 0.8, ReferenceImages = 60_000, TestImages = 1000,
                TestAccuracy = 0.96, TestUnambiguous = 0.9, ReconstructionAccuracy = 0.7, ReconstructionUnambiguous = 0.6,
                ReconstructionConfusions = [new Confusion(4, 9, 30), new Confusion(5, 3, 12)],
                GeneratedImages = 1000, GeneratedUnambiguous = 0.45, GeneratedLabelCounts = [100, 150, 50, 120, 80, 60, 110, 130, 90, 110],
            },
        };
    }

    [Fact]
    public void Metrics_json_round_trips_and_uses_camel_case_names()
    {
        using var folder = new TemporaryDirectory();
        string path = folder.File("metrics.json");
        ReportMetrics metrics = Metrics();

        metrics.Save(path);
        ReportMetrics loaded = ReportMetrics.Load(path);

        loaded.Epochs.Should().HaveCount(20);
        loaded.Epochs[4].Should().Be(metrics.Epochs[4]);
        loaded.FinalTestLoss.Should().Be(metrics.FinalTestLoss);
        loaded.Versions.Should().Be(metrics.Versions);
        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(path));
        JsonElement root = json.RootElement;
        root.GetProperty("epochs")[0].GetProperty("trainLoss").GetDouble().Should().Be(189);
        root.GetProperty("versions").GetProperty("torchSharp").GetString().Should().Be("0.107.0");
        root.GetProperty("configuration").GetProperty("seed").GetInt32().Should().Be(0);
        root.GetProperty("trainingCurve").GetProperty("convergenceEpoch").ValueKind.Should().Be(JsonValueKind.Number);
    }

    [Fact]
    public void Loading_broken_metrics_names_the_file()
    {
        using var folder = new TemporaryDirectory();
        string path = folder.File("metrics.json");
        File.WriteAllText(path, "{ not json");

        FluentActions.Invoking(() => ReportMetrics.Load(path)).Should().Throw<InvalidDataException>().WithMessage($"*{path}*");
    }

    [Fact]
    public void Report_shows_reference_numbers_with_differences_and_links_the_figures()
    {
        ReportMetrics metrics = Metrics();

        string markdown = ReportWriter.Render(metrics, [new FigureEntry("training_loss.png", "Training loss", "caption text")], "vae-ml report", ["a note"]);

        // Final train loss 149 + 2 = 151 vs reference 149.4: +1.60.
        markdown.Should().Contain("| 149.4 | 151.00 | +1.60 (+1.1%) |");
        markdown.Should().Contain("| 150.9 | 151.50 | +0.60 (+0.4%) |");
        markdown.Should().Contain("| 149.9 | 150.50 | +0.60 (+0.4%) |");
        markdown.Should().Contain("![Training loss](./training_loss.png)");
        markdown.Should().Contain("caption text");
        markdown.Should().Contain("> a note");
        markdown.Should().Contain("vae-ml report");
        markdown.Should().Contain("5-nearest-neighbour accuracy of the digit from the latent mean: 80.0%");
        markdown.Should().Contain("partly: clear for 1 (99%), 0 (95%), 7 (92%), 6 (90%); mixed with neighbours for 9 (45%), 4 (40%), 5 (30%)");
        markdown.Should().Contain("finds 60.0% of the reconstructions of the first 1,000 test images unambiguous");
        markdown.Should().Contain("reads the true digit in only 70.0% (96.0% for the originals); most frequent misreadings: 4 read as 9 (30x), 5 read as 3 (12x)");
        markdown.Should().Contain("| readable: partly (67% of the real-image rate); the right digit: partly (73% of the real-image rate) |");
        markdown.Should().Contain("2 logical CPUs, Test CPU");
        markdown.Should().Contain("45.0% of 1,000 images decoded from z ~ N(0, I) are unambiguous");
        markdown.Should().Contain("| partly (50% of the real-image rate) |");
        markdown.Should().Contain("digits assigned: 0: 100, 1: 150, 2: 50");
        markdown.Should().NotContain("configuration differs");
    }

    [Fact]
    public void Report_warns_when_the_configuration_is_not_the_reports()
    {
        string markdown = ReportWriter.Render(Metrics(trainImages: 2000, epochs: 1), [], "vae-ml report --train-limit 2000", []);

        markdown.Should().Contain("configuration differs from the report's");
    }
}
