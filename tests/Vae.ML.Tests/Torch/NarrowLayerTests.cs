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
/// The narrow layers of the CPU step (<see cref="CpuDense.IsNarrow"/>: the latent heads, the decoder's first layer),
/// whose products run in managed code (<see cref="NarrowProducts"/>), against libtorch's linear layer and autograd, and
/// against themselves cut into several ranges; and whole steps with narrow layers against the autograd path.
/// </summary>
public class NarrowLayerTests
{
    private const double Tolerance = 1e-5;

    public NarrowLayerTests() => TorchRuntime.EnsureInitialized();

    /// <summary>A layer's parameters with gradient buffers, as <see cref="FlatAdam"/> leaves them.</summary>
    private static Dictionary<string, Parameter> Parameters(int inputs, int outputs, int seed)
    {
        using var generator = new Generator((ulong)seed);
        var weight = new Parameter(torch.randn(outputs, inputs, generator: generator));
        var bias = new Parameter(torch.randn(outputs, generator: generator));
        weight.grad = torch.full(outputs, inputs, float.NaN);
        bias.grad = torch.full(outputs, float.NaN);
        return new Dictionary<string, Parameter> { ["layer.weight"] = weight, ["layer.bias"] = bias };
    }

    private static Tensor Random(int rows, int columns, int seed)
    {
        using var generator = new Generator((ulong)seed);
        return torch.randn(rows, columns, generator: generator);
    }

    /// <summary>The largest difference relative to the reference's largest magnitude.</summary>
    private static double RelativeDifference(Tensor actual, Tensor expected)
    {
        using var difference = (actual - expected).abs().max();
        using var scale = expected.abs().max();
        return difference.item<float>() / Math.Max(scale.item<float>(), 1e-30);
    }

    private static float[] Values(Tensor tensor) => tensor.data<float>().ToArray();

    public static TheoryData<int, int, int> Shapes => new()
    {
        // The report's heads and decoder layer at a full, a partial and a one-row batch.
        { 400, 2, 128 },
        { 2, 400, 128 },
        { 400, 2, 97 },
        { 2, 400, 97 },
        { 400, 2, 1 },
        { 2, 400, 1 },

        // 784-64-32-2's heads and decoder layer; one output (a vector tail in every dot product); 2 → 2.
        { 32, 2, 50 },
        { 2, 32, 50 },
        { 1001, 1, 33 },
        { 1, 19, 7 },
        { 2, 2, 5 },
    };

    [Fact]
    public void The_rule_makes_the_latent_heads_and_the_decoders_first_layer_narrow_and_leaves_the_rest_to_libtorch()
    {
        CpuDense.IsNarrow(400, 2).Should().BeTrue();
        CpuDense.IsNarrow(2, 400).Should().BeTrue();
        CpuDense.IsNarrow(32, 2).Should().BeTrue();
        CpuDense.IsNarrow(784, 400).Should().BeFalse();
        CpuDense.IsNarrow(400, 784).Should().BeFalse();

        // A latent of 16 is not narrow: measured, libtorch's GEMM runs 400→16 and 16→400 faster than the managed loops.
        CpuDense.IsNarrow(400, 16).Should().BeFalse();
        CpuDense.IsNarrow(16, 400).Should().BeFalse();
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void A_narrow_layer_gives_libtorchs_output_and_autograds_gradients(int inputs, int outputs, int rows)
    {
        CpuDense.IsNarrow(inputs, outputs).Should().BeTrue("the test is about the managed products");
        foreach (var relu in new[] { false, true })
        {
            using var scope = torch.NewDisposeScope();
            var parameters = Parameters(inputs, outputs, seed: inputs + outputs);
            using var layer = new CpuDense(new LayerSpec("layer", LayerKind.Linear, inputs, outputs), parameters, StepPartition.Serial);
            var x = Random(rows, inputs, seed: 1);
            using var y = new StepMatrix(rows, outputs);
            using var g = new StepMatrix(rows, outputs);
            using var dx = new StepMatrix(rows, inputs);
            var incoming = Random(rows, outputs, seed: 2);
            var earlier = Random(rows, inputs, seed: 3);

            layer.Forward(x, y, relu);

            // The reference: libtorch's linear layer and autograd, ∂x added to what the buffer held (accumulate).
            var weight = parameters["layer.weight"].detach().clone().requires_grad_(true);
            var bias = parameters["layer.bias"].detach().clone().requires_grad_(true);
            var input = x.clone().requires_grad_(true);
            var linear = F.linear(input, weight, bias);
            var expected = relu ? F.relu(linear) : linear;
            using var weighted = (expected * incoming).sum();
            weighted.backward();

            RelativeDifference(y.Tensor, expected.detach()).Should().BeLessThan(Tolerance, "the output");

            // With a ReLU the step hands Backward ∂L/∂ReLU(y) and the layer's output, which it masks by.
            g.Tensor.copy_(incoming);
            dx.Tensor.copy_(earlier);
            layer.Backward(g, x, dx, accumulate: true, reluOutput: relu ? y : null);
            RelativeDifference(parameters["layer.weight"].grad!, weight.grad!).Should().BeLessThan(Tolerance, "∂W");
            RelativeDifference(parameters["layer.bias"].grad!, bias.grad!).Should().BeLessThan(Tolerance, "∂b");
            RelativeDifference(dx.Tensor, earlier + input.grad!).Should().BeLessThan(Tolerance, "∂x added to the buffer");

            // Without accumulate ∂x replaces the buffer's values, and the first layer (no ∂x) is served too.
            g.Tensor.copy_(incoming);
            dx.Tensor.copy_(earlier);
            layer.Backward(g, x, dx, reluOutput: relu ? y : null);
            RelativeDifference(dx.Tensor, input.grad!).Should().BeLessThan(Tolerance, "∂x");
            g.Tensor.copy_(incoming);
            layer.Backward(g, x, inputGradient: null, reluOutput: relu ? y : null);
            RelativeDifference(parameters["layer.weight"].grad!, weight.grad!).Should().BeLessThan(Tolerance, "∂W without ∂x");
        }
    }

    [Theory]
    [InlineData(400, 2, 128, 2)]
    [InlineData(2, 400, 97, 3)]
    [InlineData(32, 2, 50, 3)]
    [InlineData(1001, 1, 33, 2)]
    public void A_narrow_layer_gives_the_same_bits_on_one_range_and_on_several(int inputs, int outputs, int rows, int workers)
    {
        // Minimum work 1: every pass is cut into as many ranges as the partition allows.
        var several = new StepPartition(workers, minimumWork: 1);
        several.Parts(rows, 1).Should().BeGreaterThan(1, "the test must actually cut the passes");

        (float[] Y, float[] WeightGradient, float[] BiasGradient, float[] InputGradient) Run(StepPartition partition)
        {
            using var scope = torch.NewDisposeScope();
            var parameters = Parameters(inputs, outputs, seed: 5);
            using var layer = new CpuDense(new LayerSpec("layer", LayerKind.Linear, inputs, outputs), parameters, partition);
            var x = Random(rows, inputs, seed: 6);
            using var y = new StepMatrix(rows, outputs);
            using var g = new StepMatrix(rows, outputs);
            using var dx = new StepMatrix(rows, inputs);
            dx.Tensor.copy_(Random(rows, inputs, seed: 8));
            layer.Forward(x, y, relu: true);
            g.Tensor.copy_(Random(rows, outputs, seed: 7));
            layer.Backward(g, x, dx, accumulate: true, reluOutput: y);
            return (Values(y.Tensor), Values(parameters["layer.weight"].grad!), Values(parameters["layer.bias"].grad!), Values(dx.Tensor));
        }

        var expected = Run(StepPartition.Serial);
        var actual = Run(several);
        BitsOf(actual.Y).Should().Equal(BitsOf(expected.Y));
        BitsOf(actual.WeightGradient).Should().Equal(BitsOf(expected.WeightGradient));
        BitsOf(actual.BiasGradient).Should().Equal(BitsOf(expected.BiasGradient));
        BitsOf(actual.InputGradient).Should().Equal(BitsOf(expected.InputGradient));
    }

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

    private static int[] BitsOf(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
