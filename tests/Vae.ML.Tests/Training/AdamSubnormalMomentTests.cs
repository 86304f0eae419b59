using FluentAssertions;
using TorchSharp;
using Vae.ML.Torch;
using Xunit;
using static TorchSharp.torch;

namespace Vae.ML.Tests.Training;

/// <summary>
/// A parameter whose gradient stops (a dead ReLU unit's) keeps a first moment that decays by β₁ per step into the
/// subnormal floats and stays there (at 4·2⁻¹⁴⁹, β₁·m rounds back to m), where x86 takes a microcode assist per operation. <see cref="FlatAdam"/> stores such moments as
/// zero; these tests hold it to what that promises: no subnormal moment is ever stored, and no parameter moves
/// differently from torch.optim.Adam's float arithmetic without the flush (written out here, one element at a time).
/// </summary>
public class AdamSubnormalMomentTests
{
    private const double LearningRate = 1e-3;

    [Fact]
    public void A_moment_decaying_through_the_subnormal_floats_is_stored_as_zero_and_moves_no_parameter()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        torch.random.manual_seed(11);
        using var net = nn.Linear(16, 4); // 68 parameters: vector body and scalar tail
        using var adam = new FlatAdam(net.named_parameters(), LearningRate);
        var parameters = net.parameters().ToArray();
        var p = Values(net);
        var m = new float[p.Length];
        var v = new float[p.Length];
        var referenceWentSubnormal = false;

        // 0.1 · 0.25 · 0.9^k falls below 2^-125 after about 790 steps (and below 2^-126, into the subnormals, one step later).
        for (var step = 1; step <= 1000; step++)
        {
            var gradient = step <= 3 ? 0.25f : 0f;
            adam.ZeroGrad();
            if (gradient != 0)
            {
                using var noGrad = torch.no_grad();
                foreach (var parameter in parameters)
                {
                    parameter.grad!.fill_(gradient);
                }
            }

            adam.Step();
            ReferenceStep(p, m, v, gradient, step);
            referenceWentSubnormal |= m.Any(float.IsSubnormal);

            var state = adam.GetState();
            state.SelectMany(s => s.ExpAvg).Should().NotContain(x => float.IsSubnormal(x), $"no subnormal first moment is stored (step {step})");
            state.SelectMany(s => s.ExpAvgSq).Should().NotContain(x => float.IsSubnormal(x), $"no subnormal second moment is stored (step {step})");
        }

        referenceWentSubnormal.Should().BeTrue("without the flush the first moments pass through the subnormal floats");
        m.Should().OnlyContain(x => x == 4 * float.Epsilon, "without the flush a decaying moment never leaves the subnormals: at 4·2⁻¹⁴⁹, β₁·m rounds back to m");
        adam.GetState().SelectMany(s => s.ExpAvg).Should().OnlyContain(x => x == 0);
        Values(net).Should().Equal(p, "the flush changes no parameter's bits");
    }

    [Fact]
    public void Moments_at_or_above_the_threshold_are_kept_as_they_are()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        torch.random.manual_seed(12);
        using var net = nn.Linear(16, 4);
        using var adam = new FlatAdam(net.named_parameters(), LearningRate);
        var p = Values(net);
        var m = new float[p.Length];
        var v = new float[p.Length];

        // A gradient of exactly 2^-125 / (1 − β₁) makes the first step's moment the threshold itself.
        var gradient = FlatAdam.TinyMoment / 0.1f;
        using (torch.no_grad())
        {
            foreach (var parameter in net.parameters())
            {
                parameter.grad!.fill_(gradient);
            }
        }

        adam.Step();
        ReferenceStep(p, m, v, gradient, 1);

        m.Should().OnlyContain(x => x >= FlatAdam.TinyMoment, "the reference's first moment is at the threshold");
        adam.GetState().SelectMany(s => s.ExpAvg).Should().Equal(m, "a moment at the threshold is not flushed");
        Values(net).Should().Equal(p);
    }

    /// <summary>torch.optim.Adam's update in float, in its order, with no flush (the gradient the same for every element).</summary>
    private static void ReferenceStep(float[] p, float[] m, float[] v, float g, int step)
    {
        float beta1 = 0.9f, oneMinusBeta1 = (float)(1 - 0.9), beta2 = 0.999f, oneMinusBeta2 = (float)(1 - 0.999), epsilon = 1e-8f;
        var stepSize = (float)(-(LearningRate / (1 - Math.Pow(0.9, step))));
        var root = (float)Math.Sqrt(1 - Math.Pow(0.999, step));
        for (var i = 0; i < p.Length; i++)
        {
            m[i] = (m[i] * beta1) + (g * oneMinusBeta1);
            v[i] = (v[i] * beta2) + (oneMinusBeta2 * g * g);
            p[i] += stepSize * (m[i] / ((MathF.Sqrt(v[i]) / root) + epsilon));
        }
    }

    private static float[] Values(nn.Module module)
        => module.parameters().SelectMany(x => x.detach().cpu().data<float>().ToArray()).ToArray();
}
