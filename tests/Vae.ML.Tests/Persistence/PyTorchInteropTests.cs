using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Core;

namespace Vae.ML.Tests.Persistence;

/// <summary>
/// Runs only where /usr/bin/python3 can import torch and the report's reference script is found (set
/// VAE_ML_SEED_VAE to its path, or keep the shared/reference/seed_vae.py layout next to the repository); skipped with
/// the reason otherwise. On Debian: apt-get install python3-torch.
/// </summary>
public sealed class PyTorchFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Reason = new(FindReason);

    public PyTorchFactAttribute()
    {
        if (Reason.Value is string reason)
        {
            Skip = reason;
        }
    }

    public const string Python = "/usr/bin/python3";

    public static string? ReferenceScript
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable("VAE_ML_SEED_VAE");
            if (!string.IsNullOrEmpty(configured))
            {
                return File.Exists(configured) ? configured : null;
            }

            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                var candidate = Path.Combine(directory.FullName, "shared", "reference", "seed_vae.py");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            return null;
        }
    }

    private static string? FindReason()
    {
        if (!File.Exists(Python))
        {
            return $"{Python} is absent; install python3 and python3-torch to compare with the PyTorch reference.";
        }

        using var process = Process.Start(new ProcessStartInfo(Python, ["-c", "import torch"]) { RedirectStandardError = true, UseShellExecute = false })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            return $"{Python} cannot import torch (apt-get install python3-torch): {error.Trim().Split('\n')[^1]}";
        }

        return ReferenceScript is null
            ? "The reference script seed_vae.py was not found (set VAE_ML_SEED_VAE, or keep shared/reference/seed_vae.py beside the repository)."
            : null;
    }
}

public class PyTorchInteropTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Width = 784;

    [PyTorchFact]
    public void Exported_weights_give_the_same_test_loss_in_the_PyTorch_reference_class()
    {
        var ml = new MLContext(seed: 0);
        var definition = SchemaDefinition.Create(typeof(SyntheticData.Row));
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, Width);
        IDataView Load(SyntheticData.Row[] rows) => ml.Data.LoadFromEnumerable(rows, definition);
        var train = SyntheticData.Rows(512, seed: 1, width: Width);
        var test = SyntheticData.Rows(812, seed: 1, width: Width)[512..];
        var options = new VaeOptions { Epochs = 2, BatchSize = 64, Seed = 3, Device = "cpu", ValidationData = Load(test) };

        using var vae = ml.Transforms.Vae(options).Fit(Load(train));
        using var scratch = new ScratchDirectory();
        var weights = scratch.File("vae.safetensors");
        var inputs = scratch.File("test.f32");
        vae.ExportSafetensors(weights);
        var matrix = SyntheticData.Matrix(test);
        File.WriteAllBytes(inputs, MemoryMarshal.AsBytes(matrix.AsSpan()).ToArray());

        using var result = RunScript(weights, inputs);
        var pytorchAtMean = result.RootElement.GetProperty("test_loss_at_mean").GetDouble();
        var pytorchSampled = result.RootElement.GetProperty("test_loss_sampled").GetDouble();

        var vaeMlAtMean = vae.Score(matrix).Average(s => (double)s);
        var last = vae.History[^1];
        output.WriteLine($"PyTorch: at mean {pytorchAtMean:F5}, sampled {pytorchSampled:F5}; Vae.ML: Score mean {vaeMlAtMean:F5}, " +
            $"validation at mean {last.ValidationLossAtMean:F5}, sampled {last.ValidationLoss:F5} ({result.RootElement.GetProperty("torch").GetString()})");
        pytorchAtMean.Should().BeApproximately(vaeMlAtMean, 0.1, "the same weights must give the same loss in both frameworks");
        pytorchAtMean.Should().BeApproximately(last.ValidationLossAtMean!.Value, 0.1);
        // With z sampled the two draw different noise; over 300 images the means still agree closely.
        pytorchSampled.Should().BeApproximately(last.ValidationLoss!.Value, 2.0);
        result.RootElement.GetProperty("rows").GetInt32().Should().Be(300);
        // The saved model is PyTorch's state_dict as it is, and its checksum is what hashlib computes over the data.
        var metadata = result.RootElement.GetProperty("metadata");
        metadata.GetProperty("vae_ml_format_version").GetString().Should().Be("4");
        metadata.GetProperty("tensors_sha256").GetString().Should().Be(result.RootElement.GetProperty("data_sha256").GetString());
    }

    [PyTorchFact]
    public void Weights_trained_in_PyTorch_import_and_score_the_same()
    {
        var inputs = SyntheticData.Matrix(SyntheticData.Rows(256, seed: 4, width: Width));
        using var scratch = new ScratchDirectory();
        var weights = scratch.File("pytorch.safetensors");
        var inputPath = scratch.File("inputs.f32");
        File.WriteAllBytes(inputPath, MemoryMarshal.AsBytes(inputs.AsSpan()).ToArray());

        using var result = RunScript(weights, inputPath, "--train-steps", "30", "--latent", "3");
        var options = new VaeOptions { LatentDimension = 3, Device = "cpu" };
        using var vae = VaeTransformer.ImportSafetensors(new MLContext(), weights, options);

        var pytorchAtMean = result.RootElement.GetProperty("test_loss_at_mean").GetDouble();
        var vaeMlAtMean = vae.Score(inputs).Average(s => (double)s);
        output.WriteLine($"PyTorch-trained model: PyTorch at mean {pytorchAtMean:F5}, Vae.ML Score mean {vaeMlAtMean:F5}");
        vae.InputSize.Should().Be(Width);
        vaeMlAtMean.Should().BeApproximately(pytorchAtMean, 0.1);
    }

    private static JsonDocument RunScript(params string[] arguments)
    {
        var start = new ProcessStartInfo(PyTorchFactAttribute.Python,
            [Path.Combine(AppContext.BaseDirectory, "Persistence", "pytorch_test_loss.py"), PyTorchFactAttribute.ReferenceScript!, .. arguments])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        process.ExitCode.Should().Be(0, $"the PyTorch script failed: {errors.Result}");
        return JsonDocument.Parse(stdout);
    }
}
