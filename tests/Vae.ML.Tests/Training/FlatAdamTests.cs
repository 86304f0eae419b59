using FluentAssertions;
using TorchSharp;
using Vae.ML.Torch;
using Xunit;
using static TorchSharp.torch;

namespace Vae.ML.Tests.Training;

public class FlatAdamTests
{
    /// <summary>Two identical small networks, each trained a few steps by one of the two optimizers, on the same inputs.</summary>
    private static (float[] Flat, float[] Reference) TrainBoth(int steps)
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        torch.random.manual_seed(7);
        using var flatNet = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3));
        using var referenceNet = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3));
        using (torch.no_grad())
        {
            foreach (var ((_, a), (_, b)) in flatNet.named_parameters().Zip(referenceNet.named_parameters()))
            {
                b.copy_(a);
            }
        }

        using var flat = new FlatAdam(flatNet.named_parameters(), 1e-2);
        using var reference = torch.optim.Adam(referenceNet.parameters(), 1e-2);
        for (var step = 0; step < steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            var input = torch.linspace(-1, 1 + step, 10).reshape(2, 5);
            flat.ZeroGrad();
            flatNet.forward(input).pow(2).sum().backward();
            flat.Step();
            reference.zero_grad();
            referenceNet.forward(input).pow(2).sum().backward();
            reference.step();
        }

        static float[] Values(nn.Module m) => m.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray()).ToArray();
        return (Values(flatNet), Values(referenceNet));
    }

    [Fact]
    public void Updates_the_parameters_as_torch_optim_Adam_does()
    {
        var (flat, reference) = TrainBoth(steps: 5);

        // The same element-wise arithmetic in the same order; only a vector kernel's tail may round differently.
        flat.Should().HaveCount(reference.Length);
        for (var i = 0; i < flat.Length; i++)
        {
            flat[i].Should().BeApproximately(reference[i], 1e-6f * Math.Max(1f, Math.Abs(reference[i])), $"value {i}");
        }
    }

    [Fact]
    public void Its_state_round_trips_and_a_restored_optimizer_continues_identically()
    {
        Vae.ML.Runtime.TorchRuntime.EnsureInitialized();
        torch.random.manual_seed(3);
        using var net = nn.Linear(3, 2);
        using var optimizer = new FlatAdam(net.named_parameters(), 1e-2);
        using var input = torch.ones(4, 3);
        for (var i = 0; i < 3; i++)
        {
            optimizer.ZeroGrad();
            using var loss = net.forward(input).sum();
            loss.backward();
            optimizer.Step();
        }

        var state = optimizer.GetState();
        state.Select(s => s.Name).Should().Equal("weight", "bias");
        state.Should().OnlyContain(s => s.Step == 3);

        using var copy = nn.Linear(3, 2);
        using (torch.no_grad())
        {
            copy.weight!.copy_(net.weight!);
            copy.bias!.copy_(net.bias!);
        }

        using var restored = new FlatAdam(copy.named_parameters(), 1e-2);
        restored.SetState(state);
        restored.Steps.Should().Be(3);
        foreach (var (module, opt) in new[] { ((nn.Module<Tensor, Tensor>)net, optimizer), (copy, restored) })
        {
            opt.ZeroGrad();
            using var loss = module.forward(input).sum();
            loss.backward();
            opt.Step();
        }

        copy.weight!.data<float>().ToArray().Should().Equal(net.weight!.data<float>().ToArray());
        copy.bias!.data<float>().ToArray().Should().Equal(net.bias!.data<float>().ToArray());

        var broken = state.Select((s, i) => i == 0 ? s with { Step = 9 } : s).ToList();
        restored.Invoking(o => o.SetState(broken)).Should().Throw<InvalidDataException>().WithMessage("*step counts*");
    }
}
