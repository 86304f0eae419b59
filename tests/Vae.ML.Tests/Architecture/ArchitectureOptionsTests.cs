using Microsoft.ML;
using Vae.ML.Tests.Core;
using Vae.ML.Torch;

namespace Vae.ML.Tests.Architecture;

/// <summary>One validation of <see cref="VaeOptions.Architecture"/> / <see cref="VaeOptions.ImageShape"/>, and one layout for network and files.</summary>
public class ArchitectureOptionsTests
{
    private static VaeOptions Conv(int[]? imageShape) => new()
    {
        Architecture = VaeArchitecture.Convolutional, ImageShape = imageShape, HiddenSizes = [8], Epochs = 1, BatchSize = 16, Seed = 1, Device = "cpu",
    };

    public static TheoryData<int[]?, string> BadImageShapes => new()
    {
        { null, "ImageShape is required for Architecture Convolutional*[1, 28, 28]*" },
        { [28, 28], "ImageShape must be [channels, height, width]*not [28, 28]*" },
        { [1, 0, 28], "ImageShape must be [channels, height, width] with every size at least 1*" },
        { [1, 30, 28], "ImageShape [1, 30, 28]*divisible by 4*e.g. to 32×28*" },
        { [1, 28, 6], "ImageShape [1, 28, 6]*divisible by 4*" },
    };

    [Theory]
    [MemberData(nameof(BadImageShapes))]
    public void A_convolutional_VAE_without_a_usable_ImageShape_is_refused_when_the_estimator_is_created(int[]? imageShape, string message)
    {
        var ml = new MLContext(seed: 1);
        var create = () => ml.Transforms.Vae(Conv(imageShape));
        create.Should().Throw<ArgumentOutOfRangeException>().WithParameterName(nameof(VaeOptions.ImageShape)).WithMessage(message + "(Parameter 'ImageShape')");
    }

    [Fact]
    public void An_ImageShape_whose_product_is_not_the_vector_size_is_refused_at_Fit_before_any_training()
    {
        var ml = new MLContext(seed: 1);
        var data = SyntheticData.Load(ml, 32); // 64 values per row
        var fit = () => ml.Transforms.Vae(Conv([1, 8, 12])).Fit(data);
        fit.Should().Throw<ArgumentException>().WithParameterName(nameof(VaeOptions.ImageShape))
            .WithMessage("ImageShape [1, 8, 12] holds 96 values per row, but the feature column has 64; their product must equal the vector size.*");

        // The same check holds for an MLP that states an image shape.
        var mlp = () => ml.Transforms.Vae(new VaeOptions { ImageShape = [1, 9, 9], HiddenSizes = [8], Epochs = 1, Device = "cpu" }).Fit(data);
        mlp.Should().Throw<ArgumentException>().WithParameterName(nameof(VaeOptions.ImageShape)).WithMessage("*81 values per row*has 64*");
    }

    [Fact]
    public void An_undefined_architecture_value_is_refused_with_the_valid_names()
    {
        var ml = new MLContext(seed: 1);
        var create = () => ml.Transforms.Vae(new VaeOptions { Architecture = (VaeArchitecture)7 });
        create.Should().Throw<ArgumentOutOfRangeException>().WithParameterName(nameof(VaeOptions.Architecture)).WithMessage("*7 is not a VaeArchitecture (Mlp or Convolutional)*");
    }

    [Fact]
    public void The_options_are_copied_when_the_estimator_is_created()
    {
        var ml = new MLContext(seed: 1);
        var options = Conv([1, 8, 8]);
        var estimator = ml.Transforms.Vae(options);
        options.ImageShape![1] = 7; // would be invalid; the estimator must not see it

        using var vae = estimator.Fit(SyntheticData.Load(ml, 32));
        vae.ImageShape.Should().Equal(1, 8, 8);
    }

    [Fact]
    public void The_MLP_keeps_the_reports_names_and_order()
    {
        var spec = VaeNetworkSpec.Mlp(784, [400, 20], 2);
        spec.Layout.Select(t => $"{t.Name} {t.ShapeText}").Should().Equal(
            "fc1.weight [400, 784]", "fc1.bias [400]", "fc1_1.weight [20, 400]", "fc1_1.bias [20]",
            "fc21.weight [2, 20]", "fc21.bias [2]", "fc22.weight [2, 20]", "fc22.bias [2]",
            "fc3.weight [20, 2]", "fc3.bias [20]", "fc3_1.weight [400, 20]", "fc3_1.bias [400]",
            "fc4.weight [784, 400]", "fc4.bias [784]");
    }

    [Fact]
    public void The_convolutional_layout_follows_the_Keras_example_with_PyTorch_shapes()
    {
        var spec = new VaeNetworkSpec(VaeArchitecture.Convolutional, 3 * 8 * 12, [16], 2, [3, 8, 12]);
        spec.Layout.Select(t => $"{t.Name} {t.ShapeText}").Should().Equal(
            "enc_conv1.weight [32, 3, 3, 3]", "enc_conv1.bias [32]",
            "enc_conv2.weight [64, 32, 3, 3]", "enc_conv2.bias [64]",
            "enc_fc1.weight [16, 384]", "enc_fc1.bias [16]", // 64 maps of 2×3 after two stride-2 convolutions
            "enc_mu.weight [2, 16]", "enc_mu.bias [2]", "enc_logvar.weight [2, 16]", "enc_logvar.bias [2]",
            "dec_fc1.weight [16, 2]", "dec_fc1.bias [16]", "dec_fc2.weight [384, 16]", "dec_fc2.bias [384]",
            "dec_deconv1.weight [64, 64, 3, 3]", "dec_deconv1.bias [64]", // ConvTranspose2d weights are [in, out, k, k]
            "dec_deconv2.weight [64, 32, 3, 3]", "dec_deconv2.bias [32]",
            "dec_deconv3.weight [32, 3, 3, 3]", "dec_deconv3.bias [3]");
    }

    private static readonly VaeNetworkSpec[] Specs =
    [
        VaeNetworkSpec.Mlp(64, [16, 8], 3),
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 784, [16], 2, [1, 28, 28]),
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 2 * 4 * 12, [5, 4], 3, [2, 4, 12]),
    ];

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void The_network_registers_exactly_the_layout_and_maps_rows_to_rows(int index)
    {
        var spec = Specs[index];
        using var model = VaeModel.Create(spec, seed: 3, "cpu");
        model.GetParameters().Select(p => $"{p.Name} [{string.Join(", ", p.Shape)}]").Should().Equal(spec.Layout.Select(t => $"{t.Name} {t.ShapeText}"));

        var rows = 5;
        var inputs = Enumerable.Range(0, rows * spec.InputSize).Select(i => (i * 37 % 101) / 100f).ToArray();
        var (mu, logVar, reconstruction, score) = (new float[rows * spec.LatentDimension], new float[rows * spec.LatentDimension], new float[rows * spec.InputSize], new float[rows]);
        model.Infer(inputs, rows, mu, logVar, reconstruction, score, beta: 1, default);
        reconstruction.Should().OnlyContain(p => p > 0 && p < 1);
        score.Should().OnlyContain(s => float.IsFinite(s) && s > 0);

        // Each row is mapped on its own: the second row alone gives what it gave in the batch.
        var alone = new float[spec.InputSize];
        model.Infer(inputs.AsSpan(spec.InputSize, spec.InputSize), 1, default, default, alone, default, 1, default);
        for (var i = 0; i < spec.InputSize; i++)
        {
            alone[i].Should().BeApproximately(reconstruction[spec.InputSize + i], 1e-5f);
        }
    }

    [Fact]
    public void Architectures_compare_by_value()
    {
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 784, [16], 2, [1, 28, 28])
            .Should().Be(new VaeNetworkSpec(VaeArchitecture.Convolutional, 784, [16], 2, [1, 28, 28]));
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 784, [16], 2, [1, 28, 28])
            .Should().NotBe(new VaeNetworkSpec(VaeArchitecture.Convolutional, 784, [16], 2, [4, 14, 14]));
        VaeNetworkSpec.Mlp(784, [400], 2).Should().NotBe(new VaeNetworkSpec(VaeArchitecture.Mlp, 784, [400], 2, [1, 28, 28]));
    }
}
