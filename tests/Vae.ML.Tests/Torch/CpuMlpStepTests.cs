using FluentAssertions;
using TorchSharp;
using Vae.ML.Torch;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

// Not Vae.ML.Tests.Torch: that namespace would hide Vae.ML.Torch from the other tests' "Torch.X" references.
namespace Vae.ML.Tests.CpuStep;

/// <summary>
/// The CPU step without autograd against the autograd path it replaces: the same network, batch and ε, one step each;
/// the loss terms, every gradient and every weight after Adam's update must agree within float rounding.
/// </summary>
public class CpuMlpStepTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    /// <summary>What one step gives: its three loss terms, then each parameter's gradient, value after the update and change by it.</summary>
    private sealed record StepResult(double[] Losses, Dictionary<string, float[]> Gradients, Dictionary<string, float[]> Updated, Dictionary<string, float[]> Updates);

    private static StepResult OneStep(VaeNetworkSpec spec, float[] rows, int count, double beta, bool autograd, bool nearFloor = false)
    {
        const long seed = 11;
        using var model = VaeModel.Create(spec, seed, "cpu");
        if (spec.Likelihood == VaeLikelihood.Gaussian)
        {
            // A standardization with std ≠ 1, so the loss carries its rows · Σ log std.
            model.Standardization = new FeatureStandardization(new float[spec.InputSize], Enumerable.Repeat(2f, spec.InputSize).ToArray());
        }

        if (nearFloor)
        {
            // Learned log σ² on both sides of its floor (and at it): the floor's clamp passes gradient only from it up.
            using var noGrad = torch.no_grad();
            var floor = GaussianDecoder.MinLogVariance;
            using var values = torch.linspace(floor - 1, floor + 1, spec.InputSize);
            model.Network.DecoderLogVariance!.copy_(values);
        }

        using var optimizer = new FlatAdam(model.Network.named_parameters(), 1e-3);
        using var step = autograd ? null : CpuMlpStep.TryCreate(model);
        using var generator = model.CreateGeneratorAfterInit(seed);
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(rows, [count, spec.InputSize]);
        double[] losses;
        if (step is null)
        {
            optimizer.ZeroGrad();
            var (logits, mu, logVar) = model.Network.forward(x, generator);
            var (loss, reconstruction, kl) = VaeLoss.Batch(logits, x, mu, logVar, beta, model.Gaussian);
            loss.backward();
            losses = [loss.item<float>(), reconstruction.item<float>(), kl.item<float>()];
        }
        else
        {
            var (loss, reconstruction, kl) = step.Run(x, generator, beta);
            losses = [loss, reconstruction, kl];
        }

        var gradients = model.Network.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.data<float>().ToArray());
        var before = model.Network.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        optimizer.Step();
        var updated = model.Network.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        var updates = updated.ToDictionary(p => p.Key, p => p.Value.Zip(before[p.Key], (a, b) => a - b).ToArray());
        return new StepResult(losses, gradients, updated, updates);
    }

    private static float[] Pixels(int count, int width, int seed)
    {
        // MNIST-like rows: most values 0, the rest spread over (0, 1].
        var random = new Random(seed);
        return Enumerable.Range(0, count * width).Select(_ => random.NextDouble() < 0.8 ? 0f : (float)random.NextDouble()).ToArray();
    }

    /// <summary>The largest difference relative to the reference's largest magnitude in the same tensor.</summary>
    private static double RelativeDifference(float[] actual, float[] expected)
    {
        var scale = expected.Max(v => Math.Abs((double)v));
        var largest = actual.Zip(expected, (a, e) => Math.Abs((double)a - e)).Max();
        return scale == 0 ? largest : largest / scale;
    }

    public static TheoryData<int[], int, double, VaeLikelihood, bool, int> Cases => new()
    {
        { [400], 128, 1.0, VaeLikelihood.Bernoulli, false, 2 },
        { [400], 128, 0.0, VaeLikelihood.Bernoulli, false, 2 },
        { [400], 128, 4.0, VaeLikelihood.Bernoulli, false, 2 },
        { [400], 97, 1.0, VaeLikelihood.Bernoulli, false, 2 },
        { [64, 32], 128, 1.0, VaeLikelihood.Bernoulli, false, 2 },
        { [64, 32], 50, 4.0, VaeLikelihood.Bernoulli, false, 2 },
        { [400], 128, 1.0, VaeLikelihood.Gaussian, false, 2 },
        { [64, 32], 97, 0.0, VaeLikelihood.Gaussian, false, 2 },
        { [64, 32], 50, 4.0, VaeLikelihood.Gaussian, false, 2 },
        { [400], 128, 1.0, VaeLikelihood.Gaussian, true, 2 },

        // One-row batches (every pass on one thread) and a latent of 16.
        { [400], 1, 1.0, VaeLikelihood.Bernoulli, false, 2 },
        { [400], 1, 1.0, VaeLikelihood.Gaussian, false, 2 },
        { [64, 32], 1, 1.0, VaeLikelihood.Bernoulli, false, 2 },
        { [64, 32], 128, 1.0, VaeLikelihood.Bernoulli, false, 16 },
        { [64, 32], 97, 1.0, VaeLikelihood.Gaussian, false, 16 },
        { [400], 128, 1.0, VaeLikelihood.Gaussian, false, 16 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void One_step_gives_the_autograd_paths_loss_gradients_and_updated_weights(int[] hidden, int rows, double beta, VaeLikelihood likelihood, bool nearFloor, int latent)
    {
        var spec = VaeNetworkSpec.Mlp(784, hidden, latent) with { Likelihood = likelihood };
        var pixels = Pixels(rows, spec.InputSize, seed: rows);
        var expected = OneStep(spec, pixels, rows, beta, autograd: true, nearFloor);
        var actual = OneStep(spec, pixels, rows, beta, autograd: false, nearFloor);

        for (var i = 0; i < 3; i++)
        {
            actual.Losses[i].Should().BeApproximately(expected.Losses[i], Tolerance * Math.Max(1, Math.Abs(expected.Losses[i])), $"loss term {i}");
        }

        actual.Gradients.Keys.Should().Equal(expected.Gradients.Keys);
        foreach (var name in expected.Gradients.Keys)
        {
            var (gradient, reference) = (actual.Gradients[name], expected.Gradients[name]);
            var (weight, referenceWeight) = (actual.Updated[name], expected.Updated[name]);
            var (update, referenceUpdate) = (actual.Updates[name], expected.Updates[name]);
            var gradientDifference = RelativeDifference(gradient, reference);

            // Adam's first step moves each weight by lr·g / (|g| + 1e-8): about ±lr whatever |g| is, so where a gradient
            // sums to almost nothing (|g| near ε, cancelling terms) its last bit decides the move. Element by element the
            // updated weight is compared where that ratio is well-conditioned; the update over the whole tensor, in norm.
            var largest = reference.Max(Math.Abs);
            var conditioned = Enumerable.Range(0, reference.Length).Where(i => Math.Abs(reference[i]) >= 1e-4 * largest).ToArray();
            var updateDifference = RelativeDifference(conditioned.Select(i => weight[i]).ToArray(), conditioned.Select(i => referenceWeight[i]).ToArray());
            var updateNorm = Math.Sqrt(update.Zip(referenceUpdate, (a, e) => Math.Pow((double)a - e, 2)).Sum()) / Math.Sqrt(referenceUpdate.Sum(e => (double)e * e));
            output.WriteLine($"{name}: gradient {gradientDifference:E2}, updated {updateDifference:E2} ({conditioned.Length} of {reference.Length}), update in norm {updateNorm:E2}");
            gradientDifference.Should().BeLessThan(Tolerance, $"the gradient of {name}");
            updateDifference.Should().BeLessThan(Tolerance, $"{name} after the update where |g| is not tiny");
            updateNorm.Should().BeLessThan(Tolerance, $"the update of {name} in norm");
        }
    }

    [Fact]
    public void Epsilon_is_drawn_as_the_autograd_paths_randn_draws_it()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var first = new Generator(5);
        using var second = new Generator(5);
        using var drawn = torch.randn([128, 2], generator: first);
        using var filled = torch.empty(128, 2);
        filled.normal_(0, 1, second);
        filled.data<float>().ToArray().Should().Equal(drawn.data<float>().ToArray());
    }

    [Fact]
    public void The_step_runs_for_an_MLP_and_not_for_a_convolutional_network()
    {
        using var convolutional = VaeModel.Create(new VaeNetworkSpec(VaeArchitecture.Convolutional, 784, [16], 2, [1, 28, 28]), 1, "cpu");
        using var mlp = VaeModel.Create(VaeNetworkSpec.Mlp(4, [8], 2), 1, "cpu");
        using var optimizer = new FlatAdam(mlp.Network.named_parameters(), 1e-3);
        CpuMlpStep.TryCreate(convolutional).Should().BeNull();
        using var step = CpuMlpStep.TryCreate(mlp);
        step.Should().NotBeNull();
    }
}
