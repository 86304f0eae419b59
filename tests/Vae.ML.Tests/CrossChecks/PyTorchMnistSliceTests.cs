using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.ML;
using Vae.ML.Tests.Datasets;
using Vae.ML.Tests.Persistence;
using Xunit.Abstractions;

namespace Vae.ML.Tests.CrossChecks;

/// <summary>
/// "The same numbers as PyTorch", checked on every CI run: a seeded Vae.ML run and the report's PyTorch class, trained
/// on the same 2,000 MNIST images in the same order with the same seed, end with the same losses and weights.
/// </summary>
[Collection(MnistCollection.Name)]
public class PyTorchMnistSliceTests(MnistDataFixture mnist, ITestOutputHelper output)
{
    private const int Rows = 2000;
    private const int Epochs = 2;
    private const int BatchSize = 128;

    // Tolerances, from float32 rounding. Both sides draw identical random numbers (same seed, same randperm and randn
    // stream; docs/reproduction.md), so what differs is arithmetic only: libtorch 2.10 + MKL here, PyTorch 1.13 +
    // OpenBLAS there, BCE from logits here against BCE of sigmoid outputs there. One float32 operation rounds by
    // ε = 6e-8 (relative); a dot product of 784 terms accumulates about √784·ε ≈ 2e-6, a batch loss of 128·784 terms
    // about √1e5·ε ≈ 2e-5 in the worst direction, far less on average over an epoch. Adam's step is lr·m̂/(√v̂ + 1e-8):
    // a gradient that differs by a relative δ ≈ 1e-5 changes a step by about lr·δ = 1e-8, so after 32 steps (2 epochs of
    // 16 batches) a weight may differ by ~32·lr·δ ≈ 3e-7, rarely more where a gradient is near zero.
    // Measured on 2026-11-26: epoch losses equal to 5 decimals, largest weight difference 5.8e-7 (fc1), mean 1e-9.
    // A real difference (μ and log σ² swapped, β, a lost row, another init or shuffle) moves the losses by > 1 % and
    // every weight by up to lr per step.
    private const double LossRelativeTolerance = 1e-5;
    private const double WeightMaxAbsoluteTolerance = 1e-5;
    private const double WeightMeanAbsoluteTolerance = 1e-7;

    [PyTorchFact]
    public void Seeded_run_on_2000_images_matches_the_PyTorch_reference()
    {
        var slice = mnist.Train.Take(Rows);
        using var scratch = new ScratchDirectory();
        var images = scratch.File("images.f32");
        var weights = scratch.File("weights.f32");
        File.WriteAllBytes(images, MemoryMarshal.AsBytes(slice.Pixels.AsSpan()).ToArray());

        using var pytorch = RunScript(images, weights);
        var ml = new MLContext(seed: 0);
        var options = new VaeOptions { Epochs = Epochs, BatchSize = BatchSize, Seed = 0, Device = "cpu" };
        using var vae = ml.Transforms.Vae(options).Fit(slice.ToDataView(ml));

        var pytorchLosses = pytorch.RootElement.GetProperty("train_loss").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var vaeLosses = vae.History.Select(h => h.TrainLoss).ToArray();
        output.WriteLine($"train loss per epoch: PyTorch {string.Join(", ", pytorchLosses.Select(l => l.ToString("F5")))}; " +
            $"Vae.ML {string.Join(", ", vaeLosses.Select(l => l.ToString("F5")))} ({pytorch.RootElement.GetProperty("torch").GetString()})");
        pytorch.RootElement.GetProperty("rows").GetInt32().Should().Be(Rows);
        vaeLosses.Should().HaveCount(Epochs);
        for (var e = 0; e < Epochs; e++)
        {
            vaeLosses[e].Should().BeApproximately(pytorchLosses[e], LossRelativeTolerance * pytorchLosses[e], $"epoch {e + 1}");
        }

        var pytorchValues = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(weights)).ToArray();
        var names = pytorch.RootElement.GetProperty("parameters").EnumerateArray().Select(p => p[0].GetString()).ToArray();
        var ours = vae.Model.GetParameters();
        ours.Select(p => p.Name).Should().Equal(names, "both networks list their parameters in the report's state_dict order");
        var offset = 0;
        foreach (var (name, shape, values) in ours)
        {
            var theirs = pytorchValues.AsSpan(offset, values.Length);
            offset += values.Length;
            double max = 0, sum = 0;
            for (var i = 0; i < values.Length; i++)
            {
                var difference = Math.Abs((double)values[i] - theirs[i]);
                max = Math.Max(max, difference);
                sum += difference;
            }

            output.WriteLine($"{name} [{string.Join("×", shape)}]: max |Δ| {max:E2}, mean |Δ| {sum / values.Length:E2}");
            max.Should().BeLessThan(WeightMaxAbsoluteTolerance, $"{name}: largest weight difference");
            (sum / values.Length).Should().BeLessThan(WeightMeanAbsoluteTolerance, $"{name}: mean weight difference");
        }

        offset.Should().Be(pytorchValues.Length);
    }

    private static JsonDocument RunScript(string images, string weights)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "CrossChecks", "pytorch_mnist_slice.py");
        var start = new ProcessStartInfo(PyTorchFactAttribute.Python,
            [script, PyTorchFactAttribute.ReferenceScript!, images, weights, "--epochs", Epochs.ToString(), "--batch", BatchSize.ToString()])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        process.ExitCode.Should().Be(0, $"the PyTorch script failed: {errors.Result}");
        return JsonDocument.Parse(stdout);
    }
}
