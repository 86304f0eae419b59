using System.Text.Json;
using SkiaSharp;
using Vae.ML.Samples.Cli;
using Vae.ML.Samples.Figures;
using Vae.ML.Samples.Reporting;
using Vae.ML.Samples.Training;
using Vae.ML.Tests.Datasets;

namespace Vae.ML.Tests.Samples;

/// <summary>Runs vae-ml in-process and captures what it writes.</summary>
internal static class Cli
{
    public sealed record Result(int ExitCode, string Output, string Error);

    public static Result Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exitCode = VaeCli.Run(args, CliContext.ForWriter(output, error, args), output);
        return new Result(exitCode, output.ToString(), error.ToString());
    }
}

public class CliParsingTests
{
    public static TheoryData<string> Commands => new() { "report", "train", "reconstruct", "latent", "generate", "manifold", "interpolate" };

    [Theory]
    [MemberData(nameof(Commands))]
    public void Every_command_has_help_listing_the_common_options(string command)
    {
        Cli.Result result = Cli.Run(command, "--help");

        result.ExitCode.Should().Be(0);
        foreach (string option in new[] { "--data", "--out", "--epochs", "--latent", "--batch-size", "--lr", "--beta", "--seed", "--device", "--dataset", "--train-limit", "--test-limit" })
        {
            result.Output.Should().Contain(option, $"'{command} --help' lists {option}");
        }

        if (command is not ("report" or "train"))
        {
            result.Output.Should().Contain("--model");
        }
    }

    [Fact]
    public void Root_help_lists_the_commands()
    {
        Cli.Result result = Cli.Run("--help");

        result.ExitCode.Should().Be(0);
        foreach (string command in Commands)
        {
            result.Output.Should().Contain(command);
        }
    }

    [Theory]
    [InlineData("--epochs", "0", "--epochs must be at least 1, got 0")]
    [InlineData("--lr", "-1", "--lr must be a positive number")]
    [InlineData("--device", "gpu", "--device must be auto, cpu, cuda or cuda:N, got 'gpu'")]
    [InlineData("--train-limit", "0", "--train-limit must be at least 1, got 0")]
    [InlineData("--dataset", "cifar", "cifar")]
    [InlineData("--epochs", "many", "many")]
    [InlineData("--lr", "fast", "fast")]
    public void Bad_option_values_are_refused_naming_the_option(string option, string value, string message)
    {
        Cli.Result result = Cli.Run("train", option, value);

        result.ExitCode.Should().NotBe(0);
        result.Error.Should().Contain(message);
    }

    [Fact]
    public void Options_bind_to_settings_with_the_reports_defaults()
    {
        var options = new SampleOptions();
        var command = new System.CommandLine.RootCommand();
        foreach (var option in options.Training)
        {
            command.Options.Add(option);
        }

        command.Options.Add(options.Model);
        RunSettings defaults = options.Bind(command.Parse([]));
        RunSettings custom = options.Bind(command.Parse(["--epochs", "3", "--latent", "5", "--lr", "0.01", "--train-limit", "100", "--model", "m.vae", "--seed", "7"]));

        defaults.Should().BeEquivalentTo(new
        {
            Epochs = 20, LatentDimension = 2, BatchSize = 128, LearningRate = 1e-3, Beta = 1.0, Seed = 0, Device = "auto",
            Dataset = "mnist", TrainLimit = (int?)null, TestLimit = (int?)null, ModelPath = (string?)null, DataDirectory = (string?)null,
            OutputDirectory = Path.Combine("docs", "report"),
        });
        custom.Should().BeEquivalentTo(new { Epochs = 3, LatentDimension = 5, LearningRate = 0.01, TrainLimit = (int?)100, ModelPath = "m.vae", Seed = 7 }, o => o.ExcludingMissingMembers());
    }
}

/// <summary>
/// Each command end to end on a small slice of real MNIST (2,000 train / 500 test images, 1 epoch), in-process.
/// </summary>
[Collection(MnistCollection.Name)]
public sealed class CliCommandTests(MnistDataFixture data) : IDisposable
{
    private static readonly string[] Quick = ["--epochs", "1", "--train-limit", "2000", "--test-limit", "500"];
    private readonly TemporaryDirectory folder = new();

    public void Dispose() => folder.Dispose();

    private Cli.Result Run(string command, params string[] extra) => RunInto(folder.Path, command, extra);

    private Cli.Result RunInto(string outputDirectory, string command, params string[] extra)
    {
        string[] args = [command, "--data", data.DataDirectory, "--out", outputDirectory, .. Quick, .. extra];
        Cli.Result result = Cli.Run(args);
        result.ExitCode.Should().Be(0, $"'vae-ml {string.Join(" ", args)}' should succeed; stderr: {result.Error}; stdout: {result.Output}");
        return result;
    }

    private SKBitmap Png(string name)
    {
        string path = folder.File(name);
        File.Exists(path).Should().BeTrue($"{name} should have been written");
        return SKBitmap.Decode(path) ?? throw new InvalidDataException($"{name} does not decode as an image");
    }

    private const int Cell = 28 * 3;

    [Fact]
    public void Report_writes_every_figure_metrics_and_the_report()
    {
        Cli.Result result = Run("report");

        result.Output.Should().Contain("epoch 1/1").And.Contain("Wrote");
        using (SKBitmap loss = Png(FigureSteps.TrainingLossFile))
        {
            loss.Width.Should().Be(ReportFigures.TrainingLossWidth);
            loss.Height.Should().Be(ReportFigures.TrainingLossHeight);
        }

        using (SKBitmap latent = Png(FigureSteps.LatentSpaceFile))
        {
            latent.Width.Should().Be(ReportFigures.LatentSpaceWidth);
            latent.Height.Should().Be(ReportFigures.LatentSpaceHeight);
        }

        using (SKBitmap reconstructions = Png(FigureSteps.ReconstructionsFile))
        {
            reconstructions.Height.Should().BeGreaterThan(2 * Cell);
            reconstructions.Width.Should().BeGreaterThan(10 * Cell);
        }

        using (SKBitmap generated = Png(FigureSteps.GeneratedSamplesFile))
        {
            generated.Width.Should().Be(8 * Cell + 7 * 2 + 2 * DigitGrid.Margin);
        }

        using (SKBitmap manifold = Png(FigureSteps.ManifoldFile))
        {
            manifold.Width.Should().BeGreaterThan(20 * 56);
            manifold.Height.Should().BeGreaterThan(20 * 56);
        }

        using (SKBitmap interpolation = Png(FigureSteps.InterpolationFile))
        {
            interpolation.Width.Should().Be(12 * Cell + 11 * 4 + 2 * DigitGrid.Margin);
        }

        using JsonDocument json = JsonDocument.Parse(File.ReadAllText(folder.File("metrics.json")));
        JsonElement root = json.RootElement;
        root.GetProperty("epochs").GetArrayLength().Should().Be(1);
        JsonElement epoch = root.GetProperty("epochs")[0];
        double trainLoss = epoch.GetProperty("trainLoss").GetDouble();
        trainLoss.Should().BeApproximately(
            epoch.GetProperty("trainReconstructionLoss").GetDouble() + epoch.GetProperty("trainKlDivergence").GetDouble(), 1e-6 * trainLoss);
        epoch.GetProperty("trainKlDivergence").GetDouble().Should().BePositive();
        epoch.GetProperty("testLossAtMean").GetDouble().Should().BePositive();
        root.GetProperty("finalTestLoss").GetDouble().Should().Be(epoch.GetProperty("testLoss").GetDouble());
        root.GetProperty("device").GetString().Should().Be("cpu");
        root.GetProperty("configuration").GetProperty("trainImages").GetInt32().Should().Be(2000);
        root.GetProperty("configuration").GetProperty("testImages").GetInt32().Should().Be(500);
        root.GetProperty("configuration").GetProperty("seed").GetInt32().Should().Be(0);
        root.GetProperty("versions").GetProperty("torchSharp").GetString().Should().StartWith("0.107");
        root.GetProperty("versions").GetProperty("mlNet").GetString().Should().StartWith("5.");
        root.GetProperty("latentSeparation").GetProperty("nearestNeighbourAccuracy").GetDouble().Should().BeInRange(0.1, 1.0);

        string report = File.ReadAllText(folder.File("report.md"));
        double difference = trainLoss - PyTorchReference.TrainLossEpoch20;
        report.Should().Contain("](./latent_space.png)").And.Contain("configuration differs")
            .And.Contain(FormattableString.Invariant($"| 149.4 | {trainLoss:F2} | {difference:+0.00;-0.00} ({difference / 149.4:+0.0%;-0.0%}) |"),
                "the report compares this run's final train loss with the reference's 149.4");
        File.Exists(folder.File(SampleRun.ModelFileName)).Should().BeTrue();
    }

    [Fact]
    public void Train_writes_the_model_the_loss_figure_and_metrics()
    {
        Run("train");

        File.Exists(folder.File(SampleRun.ModelFileName)).Should().BeTrue();
        using (SKBitmap loss = Png(FigureSteps.TrainingLossFile))
        {
            loss.Width.Should().Be(ReportFigures.TrainingLossWidth);
        }

        ReportMetrics metrics = ReportMetrics.Load(folder.File("metrics.json"));
        metrics.Epochs.Should().ContainSingle();
        metrics.LatentSeparation.Should().BeNull("train alone does not encode the test set");
    }

    [Theory]
    [InlineData("reconstruct", FigureSteps.ReconstructionsFile)]
    [InlineData("latent", FigureSteps.LatentSpaceFile)]
    [InlineData("generate", FigureSteps.GeneratedSamplesFile)]
    [InlineData("manifold", FigureSteps.ManifoldFile)]
    [InlineData("interpolate", FigureSteps.InterpolationFile)]
    public void Figure_commands_write_their_figure_alone(string command, string file)
    {
        Run(command);

        using SKBitmap figure = Png(file);
        figure.Width.Should().BeGreaterThan(100);
        Directory.GetFiles(folder.Path, "*.png").Select(Path.GetFileName).Should().Equal(file);
    }

    [Fact]
    public void Figure_options_change_the_figure()
    {
        Run("generate", "--grid", "3");
        using (SKBitmap generated = Png(FigureSteps.GeneratedSamplesFile))
        {
            generated.Width.Should().BeGreaterThanOrEqualTo(3 * Cell + 2 * 2 + 2 * DigitGrid.Margin);
            generated.Width.Should().BeLessThan(8 * Cell, "3 columns, not 8");
        }

        Run("interpolate", "--from", "3", "--to", "4", "--steps", "5");
        using SKBitmap interpolation = Png(FigureSteps.InterpolationFile);
        interpolation.Width.Should().Be(7 * Cell + 6 * 4 + 2 * DigitGrid.Margin);
    }

    [Fact]
    public void Latent_dimension_above_two_uses_the_first_two_and_one_skips_the_plane_figures()
    {
        Run("latent", "--latent", "4");
        using (SKBitmap latent = Png(FigureSteps.LatentSpaceFile))
        {
            latent.Width.Should().Be(ReportFigures.LatentSpaceWidth);
        }

        Cli.Result result = RunInto(folder.File("one"), "manifold", "--latent", "1");
        result.Output.Should().Contain("latent_manifold.png skipped");
        File.Exists(Path.Combine(folder.File("one"), FigureSteps.ManifoldFile)).Should().BeFalse();
    }

    [Fact]
    public void Interpolating_a_test_image_that_does_not_exist_fails_clearly()
    {
        string[] args = ["interpolate", "--data", data.DataDirectory, "--out", folder.Path, .. Quick, "--to", "500"];

        Cli.Result result = Cli.Run(args);

        result.ExitCode.Should().Be(1);
        result.Error.Should().Contain("--to must be a test image index in 0..499");
    }

    [Fact]
    public void Figure_commands_reuse_a_saved_model_without_training()
    {
        // The report draws its reconstructions from the model in memory; 'reconstruct --model' from the saved file.
        Run("report");
        byte[] fromTraining = File.ReadAllBytes(folder.File(FigureSteps.ReconstructionsFile));
        string reuse = folder.File("reuse");

        Cli.Result result = RunInto(reuse, "reconstruct", "--model", folder.File(SampleRun.ModelFileName));

        result.Output.Should().Contain("Loaded").And.NotContain("epoch 1/1", "a given model is not retrained");
        File.ReadAllBytes(Path.Combine(reuse, FigureSteps.ReconstructionsFile)).Should().Equal(fromTraining, "the saved model reconstructs exactly as the trained one");
        File.Exists(Path.Combine(reuse, SampleRun.ModelFileName)).Should().BeFalse("nothing was trained, so nothing is saved");
    }

    [Fact]
    public void A_corrupt_model_file_fails_clearly()
    {
        string corrupt = folder.File("corrupt.vae");
        File.WriteAllBytes(corrupt, [1, 2, 3, 4]);

        Cli.Result result = Cli.Run("generate", "--model", corrupt, "--out", folder.Path);

        result.ExitCode.Should().Be(1);
        result.Error.Should().StartWith("error:").And.Contain(corrupt);
    }

    [Fact]
    public void A_missing_model_file_fails_clearly()
    {
        string missing = folder.File("nope.vae");
        Cli.Result result = Cli.Run("generate", "--model", missing, "--out", folder.Path);

        result.ExitCode.Should().Be(1);
        result.Error.Should().Contain(missing);
    }
}
