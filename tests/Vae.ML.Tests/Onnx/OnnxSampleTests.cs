using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Samples.Bench;
using Vae.ML.Samples.Onnx;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Datasets;
using Vae.ML.Tests.Persistence;
using Vae.ML.Tests.Samples;

namespace Vae.ML.Tests.Onnx;

/// <summary>
/// <c>vae-ml export-onnx</c> end to end on a small MNIST slice, and the serving measure the bench shares with it.
/// Nothing asserts on a time: only that each path ran, agreed with libtorch and produced sane figures.
/// </summary>
[Collection(MnistCollection.Name)]
public class OnnxSampleTests(MnistDataFixture mnist)
{
    [Fact]
    public void Export_onnx_command_trains_exports_checks_and_times_both_paths()
    {
        using var folder = new ScratchDirectory();
        Cli.Result result = Cli.Run("export-onnx", "--data", mnist.DataDirectory, "--out", folder.Path, "--epochs", "1", "--train-limit", "500",
            "--test-limit", "300", "--calls", "100", "--rows", "300", "--repeats", "1");

        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("worst relative error per column").And.Contain("| ONNX: `ApplyOnnxModel` |");
        File.Exists(Path.Combine(folder.Path, ExportOnnxCommand.OnnxFileName)).Should().BeTrue();
        File.ReadAllText(Path.Combine(folder.Path, ExportOnnxCommand.TableFileName)).Should().Contain("export-onnx").And.Contain("libtorch: `vae.Transform`");

        // The written model serves through ML.NET without the VAE: same column names, scores for every row.
        var ml = new MLContext(seed: 0);
        var test = mnist.Test.Take(20).ToDataView(ml);
        var scored = ml.Transforms.ApplyOnnxModel(Path.Combine(folder.Path, ExportOnnxCommand.OnnxFileName)).Fit(test).Transform(test);
        scored.GetColumn<float[]>("Score").Should().HaveCount(20).And.OnlyContain(s => s.Length == 1 && float.IsFinite(s[0]) && s[0] > 0);
    }

    [Fact]
    public void Export_onnx_command_reports_a_missing_model_file_clearly()
    {
        using var folder = new ScratchDirectory();
        string missing = Path.Combine(folder.Path, "missing.safetensors");
        Cli.Result result = Cli.Run("export-onnx", "--model", missing, "--out", folder.Path, "--data", mnist.DataDirectory);

        result.ExitCode.Should().Be(1);
        result.Error.Should().Contain("missing.safetensors");
        File.Exists(Path.Combine(folder.Path, ExportOnnxCommand.OnnxFileName)).Should().BeFalse();
    }

    [Fact]
    public void Serving_measure_runs_every_path_on_renamed_columns_and_leaves_the_model_usable()
    {
        var ml = new MLContext(seed: 0);
        using var vae = PersistenceFixtures.Train(ml); // 64 features; Latent is "Z", Score is "Anomaly"
        using var folder = new ScratchDirectory();
        float[] rows = PersistenceFixtures.Probe(50);

        OnnxServingMeasure measure = OnnxServing.Measure(vae, Path.Combine(folder.Path, "sub", "vae.onnx"), rows, new OnnxServingSizes(Calls: 100, Rows: 120, Repeats: 2),
            threads: 1, _ => { }, CancellationToken.None);

        measure.WorstRelativeError.Should().BeLessThanOrEqualTo(OnnxAgreement.Tolerance);
        new[] { measure.TorchEngine.Median, measure.OnnxEngine.Median }.Should().OnlyContain(us => us > 0 && double.IsFinite(us));
        measure.TorchEngine.P99.Should().BeGreaterThanOrEqualTo(measure.TorchEngine.Median);
        measure.OnnxEngine.P99.Should().BeGreaterThanOrEqualTo(measure.OnnxEngine.Median);
        new[] { measure.TorchTransformRowsPerSecond, measure.OnnxTransformRowsPerSecond, measure.OnnxRuntimeRowsPerSecond }
            .Should().OnlyContain(s => s.Count == 2 && s.Min > 0);
        measure.Table().Should().Contain("batches of 1024").And.Contain("100 calls").And.Contain("120 rows");

        // The prediction engines did not take the VAE with them.
        vae.Encode(rows).Should().HaveCount(50 * vae.LatentDimension);
    }

    [Fact]
    public void Serving_measure_refuses_a_model_it_cannot_feed()
    {
        var ml = new MLContext(seed: 0);
        var options = PersistenceFixtures.SmallOptions();
        options.FeatureColumnName = "Pixels";
        using var vae = ml.Transforms.Vae(options).Fit(ml.Transforms.CopyColumns("Pixels", "Features").Fit(SyntheticData.Load(ml, 64)).Transform(SyntheticData.Load(ml, 64)));
        using var folder = new ScratchDirectory();

        var act = () => OnnxServing.Measure(vae, folder.File("vae.onnx"), PersistenceFixtures.Probe(4), new OnnxServingSizes(10, 10, 1), 1, _ => { }, CancellationToken.None);
        act.Should().Throw<ArgumentException>().WithMessage("*'Features'*");
    }
}
