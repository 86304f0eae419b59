using FluentAssertions;
using TorchSharp;
using TorchSharp.Modules;
using Vae.ML.Runtime;
using Vae.ML.Torch;
using Xunit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

// Not Vae.ML.Tests.Torch: that namespace would hide Vae.ML.Torch from the other tests' "Torch.X" references.
namespace Vae.ML.Tests.CpuStep;

/// <summary>
/// Whole CPU steps at the edges of the shapes the report does not use — one-row batches, a latent of 16, two hidden
/// layers, partial batches, both likelihoods — against the autograd path: losses, every gradient and the weights after
/// Adam's first update.
/// </summary>
public class CpuStepShapeTests
{
    private const double Tolerance = 1e-5;

    public CpuStepShapeTests() => TorchRuntime.EnsureInitialized();

    private static float[] Values(Tensor tensor) => tensor.data<float>().ToArray();

    [Theory]
    [InlineData(new[] { 400 }, 2, 1, VaeLikelihood.Bernoulli)]
    [InlineData(new[] { 400 }, 2, 1, VaeLikelihood.Gaussian)]
    [InlineData(new[] { 64, 32 }, 2, 1, VaeLikelihood.Bernoulli)]
    [InlineData(new[] { 64, 32 }, 16, 128, VaeLikelihood.Bernoulli)]
    [InlineData(new[] { 64, 32 }, 16, 97, VaeLikelihood.Gaussian)]
    [InlineData(new[] { 400 }, 16, 128, VaeLikelihood.Gaussian)]
    public void A_step_gives_the_autograd_paths_losses_gradients_and_weights_after_adam(int[] hidden, int latent, int rows, VaeLikelihood likelihood)
    {
        var spec = VaeNetworkSpec.Mlp(784, hidden, latent) with { Likelihood = likelihood };
        var random = new Random(rows + latent);
        var pixels = Enumerable.Range(0, rows * spec.InputSize)
            .Select(_ => likelihood == VaeLikelihood.Gaussian ? (float)((random.NextDouble() * 4) - 2) : random.NextDouble() < 0.8 ? 0f : (float)random.NextDouble())
            .ToArray();
        var expected = OneStep(spec, pixels, rows, autograd: true);
        var actual = OneStep(spec, pixels, rows, autograd: false);

        for (var i = 0; i < 3; i++)
        {
            actual.Losses[i].Should().BeApproximately(expected.Losses[i], Tolerance * Math.Max(1, Math.Abs(expected.Losses[i])), $"loss term {i}");
        }

        foreach (var (name, reference) in expected.Gradients)
        {
            Relative(actual.Gradients[name], reference).Should().BeLessThan(Tolerance, $"the gradient of {name}");

            // Adam's first step moves a weight by about ±lr whatever |g| is: compared where |g| is not tiny.
            var largest = reference.Max(Math.Abs);
            var conditioned = Enumerable.Range(0, reference.Length).Where(i => Math.Abs(reference[i]) >= 1e-4 * largest).ToArray();
            Relative(conditioned.Select(i => actual.Updated[name][i]).ToArray(), conditioned.Select(i => expected.Updated[name][i]).ToArray())
                .Should().BeLessThan(Tolerance, $"{name} after the update");
        }
    }

    private sealed record StepResult(double[] Losses, Dictionary<string, float[]> Gradients, Dictionary<string, float[]> Updated);

    private static StepResult OneStep(VaeNetworkSpec spec, float[] pixels, int rows, bool autograd)
    {
        const long seed = 13;
        using var model = VaeModel.Create(spec, seed, "cpu");
        if (spec.Likelihood == VaeLikelihood.Gaussian)
        {
            model.Standardization = new FeatureStandardization(new float[spec.InputSize], Enumerable.Repeat(2f, spec.InputSize).ToArray());
        }

        using var optimizer = new FlatAdam(model.Network.named_parameters(), 1e-3);
        using var step = autograd ? null : CpuMlpStep.TryCreate(model);
        using var generator = model.CreateGeneratorAfterInit(seed);
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(pixels, [rows, spec.InputSize]);
        double[] losses;
        if (step is null)
        {
            optimizer.ZeroGrad();
            var (decoded, mu, logVar) = model.Network.forward(x, generator);
            var (loss, reconstruction, kl) = VaeLoss.Batch(decoded, x, mu, logVar, 1.0, model.Gaussian);
            loss.backward();
            losses = [loss.item<float>(), reconstruction.item<float>(), kl.item<float>()];
        }
        else
        {
            var (loss, reconstruction, kl) = step.Run(x, generator, 1.0);
            losses = [loss, reconstruction, kl];
        }

        var gradients = model.Network.named_parameters().ToDictionary(p => p.name, p => Values(p.parameter.grad!));
        optimizer.Step();
        return new StepResult(losses, gradients, model.Network.named_parameters().ToDictionary(p => p.name, p => Values(p.parameter)));
    }

    private static double Relative(float[] actual, float[] expected)
    {
        var scale = expected.Max(v => Math.Abs((double)v));
        var largest = actual.Zip(expected, (a, e) => Math.Abs((double)a - e)).Max();
        return scale == 0 ? largest : largest / scale;
    }

}
