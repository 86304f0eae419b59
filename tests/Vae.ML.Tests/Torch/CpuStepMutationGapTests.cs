using FluentAssertions;
using TorchSharp;
using Vae.ML.Torch;
using Xunit;
using static TorchSharp.torch;

// Not Vae.ML.Tests.Torch: that namespace would hide Vae.ML.Torch from the other tests' "Torch.X" references.
namespace Vae.ML.Tests.CpuStep;

/// <summary>
/// What the mutation run of the CPU training step (docs/testing.md, "Torch/: the CPU training step") found untested:
/// layer widths that are not a multiple of any vector width (so every managed pass runs its scalar tail), a learned
/// log σ² exactly at its floor, the argument and state checks, and what the step and the optimizer own. Expected values
/// come from outside the code under test: libtorch's autograd, formulas in double precision.
/// </summary>
public class CpuStepMutationGapTests
{
    private const double Tolerance = 1e-5;

    /// <summary>One CPU step and one autograd step of the same tiny network on the same rows and ε; each parameter's gradient.</summary>
    private static (double[] Cpu, double[] Autograd, Dictionary<string, (float[] Cpu, float[] Autograd)> Gradients) BothSteps(
        VaeNetworkSpec spec, float[] rows, int count, double beta, float[]? logVariance = null)
    {
        var results = new List<(double[] Losses, Dictionary<string, float[]> Gradients)>();
        foreach (var autograd in new[] { false, true })
        {
            using var model = VaeModel.Create(spec, seed: 5, "cpu");
            if (spec.Likelihood == VaeLikelihood.Gaussian)
            {
                model.Standardization = new FeatureStandardization(new float[spec.InputSize], Enumerable.Range(0, spec.InputSize).Select(i => 0.5f + i).ToArray());
            }

            if (logVariance is not null)
            {
                using var noGrad = torch.no_grad();
                using var values = torch.tensor(logVariance);
                model.Network.DecoderLogVariance!.copy_(values);
            }

            using var optimizer = new FlatAdam(model.Network.named_parameters(), 1e-3);
            using var step = autograd ? null : CpuMlpStep.TryCreate(model);
            using var generator = model.CreateGeneratorAfterInit(5);
            using var scope = torch.NewDisposeScope();

            // Two batches of the same size, no update in between: the second step reuses the first's workspace and
            // must replace, not add to, what the first left in it and in the gradient buffer.
            var losses = new List<double>();
            var byName = new Dictionary<string, float[]>();
            for (var half = 0; half < 2; half++)
            {
                var x = torch.tensor(rows.AsSpan(half * count * spec.InputSize, count * spec.InputSize).ToArray(), [count, spec.InputSize]);
                if (step is null)
                {
                    optimizer.ZeroGrad();
                    var (decoded, mu, logVar) = model.Network.forward(x, generator);
                    var (loss, reconstruction, kl) = VaeLoss.Batch(decoded, x, mu, logVar, beta, model.Gaussian);
                    loss.backward();
                    losses.AddRange([loss.item<float>(), reconstruction.item<float>(), kl.item<float>()]);
                }
                else
                {
                    var (loss, reconstruction, kl) = step.Run(x, generator, beta);
                    losses.AddRange([loss, reconstruction, kl]);
                }

                foreach (var (name, parameter) in model.Network.named_parameters())
                {
                    byName[$"{name} (batch {half + 1})"] = parameter.grad!.data<float>().ToArray();
                }
            }

            results.Add((losses.ToArray(), byName));
        }

        var gradients = results[1].Gradients.Keys.ToDictionary(name => name, name => (results[0].Gradients[name], results[1].Gradients[name]));
        return (results[0].Losses, results[1].Losses, gradients);
    }

    private static void ShouldAgree((double[] Cpu, double[] Autograd, Dictionary<string, (float[] Cpu, float[] Autograd)> Gradients) step)
    {
        for (var i = 0; i < step.Autograd.Length; i++)
        {
            step.Cpu[i].Should().BeApproximately(step.Autograd[i], Tolerance * Math.Max(1, Math.Abs(step.Autograd[i])), $"loss term {i}");
        }

        foreach (var (name, (cpu, autograd)) in step.Gradients)
        {
            var scale = Math.Max(autograd.Max(v => Math.Abs((double)v)), 1e-3);
            for (var i = 0; i < autograd.Length; i++)
            {
                ((double)cpu[i]).Should().BeApproximately(autograd[i], Tolerance * scale, $"the gradient of {name}[{i}]");
            }
        }
    }

    private static float[] Values(int count, int seed, bool binary)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => binary ? (random.NextDouble() < 0.5 ? 0f : (float)random.NextDouble()) : (float)((random.NextDouble() * 4) - 2)).ToArray();
    }

    [Theory]
    [InlineData(VaeLikelihood.Bernoulli, 1.0, 2)]
    [InlineData(VaeLikelihood.Bernoulli, 0.3, 2)]
    [InlineData(VaeLikelihood.Gaussian, 2.0, 2)]
    [InlineData(VaeLikelihood.Bernoulli, 1.0, 1)]
    [InlineData(VaeLikelihood.Gaussian, 0.0, 1)]
    public void Widths_off_every_vector_width_give_the_autograd_paths_loss_and_gradients(VaeLikelihood likelihood, double beta, int hiddenLayers)
    {
        // 19 inputs, hidden 13 and 7 (or 13 alone), latent 3: every managed pass runs its scalar tail, the ReLU's included.
        var spec = VaeNetworkSpec.Mlp(19, hiddenLayers == 2 ? [13, 7] : [13], 3) with { Likelihood = likelihood };
        const int rows = 6;
        var step = BothSteps(spec, Values(2 * rows * spec.InputSize, seed: 8, binary: likelihood == VaeLikelihood.Bernoulli), rows, beta);
        ShouldAgree(step);
    }

    [Fact]
    public void The_learned_log_variance_exactly_at_its_floor_gets_the_clamps_gradient()
    {
        var spec = VaeNetworkSpec.Mlp(5, [4], 2) with { Likelihood = VaeLikelihood.Gaussian };
        var floor = (float)GaussianDecoder.MinLogVariance;

        // Below, exactly at, and above the floor: clamp_min passes the gradient where θ ≥ floor, and only there.
        float[] logVariance = [floor - 0.5f, floor, floor + 0.25f, 0f, 1f];
        var step = BothSteps(spec, Values(2 * 4 * spec.InputSize, seed: 3, binary: false), 4, beta: 1, logVariance);
        ShouldAgree(step);
        var (cpu, autograd) = step.Gradients[GaussianDecoder.LogVarianceName + " (batch 1)"];
        autograd[0].Should().Be(0f);
        autograd[1].Should().NotBe(0f, "the floor itself is inside the clamp's pass-through");
        cpu[1].Should().BeApproximately(autograd[1], 1e-5f * Math.Abs(autograd[1]));
    }

    [Fact]
    public void The_step_refuses_a_network_whose_optimizer_was_not_created_first()
    {
        using var model = VaeModel.Create(VaeNetworkSpec.Mlp(4, [3], 2), 1, "cpu");
        var create = () => CpuMlpStep.TryCreate(model);
        create.Should().Throw<InvalidOperationException>().WithMessage("*'fc1.*' has no gradient buffer*optimizer first*");
    }

    [Fact]
    public void The_step_names_the_parameter_that_lacks_a_gradient_buffer()
    {
        using var model = VaeModel.Create(VaeNetworkSpec.Mlp(4, [3], 2), 1, "cpu");
        var weight = model.Network.named_parameters().Single(p => p.name == "fc1.weight").parameter;
        weight.grad = torch.zeros_like(weight);
        var create = () => CpuMlpStep.TryCreate(model);
        create.Should().Throw<InvalidOperationException>().WithMessage("'fc1.bias' has no gradient buffer*");
    }

    [Fact]
    public void Step_memory_refuses_a_tensor_it_cannot_read_as_contiguous_Float32_on_the_CPU()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var doubles = torch.zeros(3, 4, ScalarType.Float64);
        using var matrix = torch.zeros(3, 4);
        using var transposed = matrix.t();
        ((Action)(() => StepMemory.Span(doubles))).Should().Throw<InvalidOperationException>().WithMessage("*contiguous Float32 CPU*Float64*");
        ((Action)(() => StepMemory.Span(transposed))).Should().Throw<InvalidOperationException>().WithMessage("*contiguous Float32 CPU*");
        StepMemory.Span(matrix).Length.Should().Be(12);
    }

    [Fact]
    public void The_step_and_the_optimizer_free_every_tensor_they_allocate()
    {
        using var model = VaeModel.Create(VaeNetworkSpec.Mlp(6, [5], 2) with { Likelihood = VaeLikelihood.Gaussian }, 1, "cpu");
        using var generator = model.CreateGeneratorAfterInit(1);
        using var optimizer = new FlatAdam(model.Network.named_parameters(), 1e-3);
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (var step = CpuMlpStep.TryCreate(model)!)
        {
            // Two batch sizes: two workspaces.
            foreach (var rows in new[] { 3, 2 })
            {
                using var scope = torch.NewDisposeScope();
                step.Run(torch.ones(rows, 6), generator, beta: 1);
                optimizer.Step();
            }
        }

        DisposeScopeManager.Statistics.ThreadTotalLiveCount.Should().Be(before, "the step frees its layers' views, workspaces and the Gaussian's gradient handle");
    }

    [Fact]
    public void Adam_refuses_a_parameter_that_is_not_Float32_by_name()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var layer = torch.nn.Linear(2, 2, dtype: ScalarType.Float64);
        var create = () => new FlatAdam(layer.named_parameters(), 1e-3);
        create.Should().Throw<InvalidOperationException>().WithMessage("Parameter 'weight' is Float64*Float32 only*");
    }

    [Fact]
    public void A_restored_Adam_state_must_name_every_parameter_with_its_size()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var layer = torch.nn.Linear(3, 2);
        using var optimizer = new FlatAdam(layer.named_parameters(), 1e-3);
        var state = optimizer.GetState();
        state.Select(s => (s.Name, s.ExpAvg.Length, s.ExpAvgSq.Length)).Should().Equal(("weight", 6, 6), ("bias", 2, 2));

        var missing = state.Where(s => s.Name != "bias").ToList();
        optimizer.Invoking(o => o.SetState(missing)).Should().Throw<InvalidDataException>().WithMessage("*lacks parameter 'bias'*");
        var shortMoments = state.Select(s => s.Name == "weight" ? s with { ExpAvgSq = new float[5] } : s).ToList();
        optimizer.Invoking(o => o.SetState(shortMoments)).Should().Throw<InvalidDataException>().WithMessage("*'weight' has 5 values; the parameter has 6*");
        var shortFirst = state.Select(s => s.Name == "bias" ? s with { ExpAvg = new float[3] } : s).ToList();
        optimizer.Invoking(o => o.SetState(shortFirst)).Should().Throw<InvalidDataException>().WithMessage("*'bias' has 3 values; the parameter has 2*");
    }

    [Fact]
    public void A_restored_Adam_state_sets_both_moments_and_the_step_count()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var layer = torch.nn.Linear(3, 2);
        using var optimizer = new FlatAdam(layer.named_parameters(), 1e-3);
        var saved = new List<AdamParameterState>
        {
            new("bias", 4, [0.5f, -0.25f], [0.125f, 2f]),
            new("weight", 4, [1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]),
        };

        optimizer.SetState(saved);

        optimizer.Steps.Should().Be(4);
        var state = optimizer.GetState();
        state.Select(s => s.Name).Should().Equal("weight", "bias");
        state[0].ExpAvg.Should().Equal(1, 2, 3, 4, 5, 6);
        state[0].ExpAvgSq.Should().Equal(6, 5, 4, 3, 2, 1);
        state[1].ExpAvg.Should().Equal(0.5f, -0.25f);
        state[1].ExpAvgSq.Should().Equal(0.125f, 2f);
        state.Should().OnlyContain(s => s.Step == 4);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(12)]
    public void A_NaN_gradient_anywhere_and_the_largest_magnitude_reach_the_divergence_guard(int nanAt)
    {
        // 13 values: one vector of 8 and a scalar tail of 5 (a whole vector at 256 bits; the tail either way).
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        using var layer = torch.nn.Linear(4, 2);
        using var extra = torch.nn.Linear(1, 3);
        using var optimizer = new FlatAdam(layer.named_parameters().Concat(extra.named_parameters().Take(1)), 1e-3);
        float[] gradients = [0.5f, -3f, 0.25f, 1f, -0.125f, 2f, -0.5f, 0.75f, 1.5f, -2.5f, 0.0625f, -7f, 0.5f];
        SetGradients(layer, extra, gradients);
        optimizer.Step();
        optimizer.LastLargestGradient.Should().Be(7f, "the largest |g| is in the scalar tail");

        gradients[1] = -9f;
        SetGradients(layer, extra, gradients);
        optimizer.Step();
        optimizer.LastLargestGradient.Should().Be(9f, "and now in the vector body");

        gradients[nanAt] = float.NaN;
        SetGradients(layer, extra, gradients);
        optimizer.Step();
        float.IsNaN(optimizer.LastLargestGradient).Should().BeTrue($"a NaN at {nanAt}");
    }

    private static void SetGradients(nn.Module layer, nn.Module extra, float[] gradients)
    {
        using var noGrad = torch.no_grad();
        var offset = 0;
        foreach (var parameter in layer.parameters().Concat(extra.parameters().Take(1)))
        {
            var count = (int)parameter.numel();
            using var values = torch.tensor(gradients.AsSpan(offset, count).ToArray(), parameter.shape);
            parameter.grad!.copy_(values);
            offset += count;
        }
    }
}
