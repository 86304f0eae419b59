using FluentAssertions;
using TorchSharp;
using Vae.ML.Torch;
using Xunit;
using static TorchSharp.torch;

namespace Vae.ML.Tests.Memory;

/// <summary>
/// The loss of a batch and the training forward dispose the scalars they use instead of leaving them to the
/// finalizer (between an evaluation pass's tensors they kept glibc's heap from being reused: +60 MB of RSS at the end
/// of every epoch of the report). Written as method calls, they must still compute what the PyTorch-style operator
/// form computes, bit for bit: the report's numbers may not move.
/// </summary>
public class DisposedScalarTests
{
    public static TheoryData<VaeLikelihood, double> Cases() => new()
    {
        { VaeLikelihood.Bernoulli, 1.0 },
        { VaeLikelihood.Bernoulli, 0.37 },
        { VaeLikelihood.Gaussian, 1.0 },
        { VaeLikelihood.Gaussian, 2.5 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_batch_loss_equals_the_operator_form_bit_for_bit(VaeLikelihood likelihood, double beta)
    {
        using var model = Model(likelihood);
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);
        var x = rand(new long[] { 37, 12 }, generator: generator);
        var (logits, mu, logVar) = model.Network.forward(x, generator);

        var (total, reconstruction, kl) = VaeLoss.Batch(logits, x, mu, logVar, beta, model.Gaussian);

        // The expression as it was written before (and as pytorch/examples writes it).
        var expectedReconstruction = likelihood == VaeLikelihood.Bernoulli
            ? nn.functional.binary_cross_entropy_with_logits(logits, x, reduction: nn.Reduction.Sum)
            : VaeLoss.GaussianNll(logits, x, model.Gaussian!).sum() + x.shape[0] * model.Gaussian!.LogStdSum;
        var expectedKl = -0.5 * sum(1 + logVar - mu.pow(2) - logVar.exp());
        Bits(reconstruction).Should().Be(Bits(expectedReconstruction));
        Bits(total).Should().Be(Bits(expectedReconstruction + beta * expectedKl));
        Bits(kl).Should().Be(Bits(expectedKl));
    }

    [Fact]
    public void The_training_forward_draws_z_as_mu_plus_eps_times_exp_of_half_logvar()
    {
        using var model = Model(VaeLikelihood.Bernoulli);
        using var scope = NewDisposeScope();
        var x = rand(new long[] { 9, 12 }, generator: new Generator(4));
        using var first = new Generator(21);
        using var second = new Generator(21);

        var (logits, mu, logVar) = model.Network.forward(x, first);

        var eps = randn(mu.shape, dtype: mu.dtype, device: mu.device, generator: second);
        var expected = model.Network.DecodeLogits(mu + eps * exp(0.5 * logVar));
        logits.data<float>().ToArray().Should().Equal(expected.data<float>().ToArray());
    }

    private static VaeModel Model(VaeLikelihood likelihood)
    {
        var model = VaeModel.Create(new VaeNetworkSpec(VaeArchitecture.Mlp, 12, [8], 2, null, likelihood), 7, "cpu");
        if (likelihood == VaeLikelihood.Gaussian)
        {
            model.Standardization = new FeatureStandardization(new float[12], Enumerable.Range(1, 12).Select(i => i / 4f).ToArray());
        }

        return model;
    }

    private static int Bits(Tensor scalar) => BitConverter.SingleToInt32Bits(scalar.item<float>());
}
