using TorchSharp;
using Vae.ML.Data;
using Vae.ML.Tests.Expectations;
using Vae.ML.Torch;
using static TorchSharp.torch;

// Not Vae.ML.Tests.Torch: that namespace would hide Vae.ML.Torch from the other tests' "Torch.X" references.
namespace Vae.ML.Tests.TorchModel;

/// <summary>
/// VaeModel's own rules (argument checks, disposal, the pooled input batch, parameter replacement, the global random
/// stream), the network description's validation and names, device names and the feature standardization, each
/// against values written here. Written for the Stryker run on Torch/'s model and scoring files (docs/testing.md).
/// </summary>
public class ModelContractGapTests
{
    /// <summary>TorchSharp's native library is loaded (and patched on Debian 12) by the library; these tests call torch first.</summary>
    public ModelContractGapTests() => Vae.ML.Runtime.TorchRuntime.EnsureInitialized();

    private const int Width = 6;

    private static float[] Rows(int rows, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows * Width).Select(_ => (float)random.NextDouble()).ToArray();
    }

    private static VaeModel Mlp(long seed = 1) => VaeModel.Create(VaeNetworkSpec.Mlp(Width, [5], 2), seed, "cpu");

    private static Dictionary<string, (long[] Shape, float[] Values)> Parameters(VaeModel model)
        => model.GetParameters().ToDictionary(p => p.Name, p => (p.Shape, p.Values), StringComparer.Ordinal);

    [Fact]
    public void Inputs_whose_length_is_not_rows_times_width_are_refused_with_both_numbers()
    {
        using var model = Mlp();
        var infer = () => model.Infer(new float[11], 2, new float[4], default, default, default, 1, default);
        infer.Should().Throw<ArgumentException>().WithMessage("Expected 2 rows of 6 values (12), got 11 values.");
        var decode = () => model.Decode(new float[3], 2, new float[12]);
        decode.Should().Throw<ArgumentException>().WithMessage("Expected 2 rows of 2 values (4), got 3 values.");
        var wrongWidth = () => model.ToDevice(new float[10], 2, 5);
        wrongWidth.Should().Throw<ArgumentException>().WithMessage("Feature rows have 6 values; got a width of 5.");
        var wrongCount = () => model.ToDevice(new float[10], 2, Width);
        wrongCount.Should().Throw<ArgumentException>().WithMessage("Expected 2 rows of 6 values (12), got 10 values.");
    }

    [Fact]
    public void No_rows_leave_the_outputs_untouched()
    {
        using var model = Mlp();
        var (mu, logVar, reconstruction, score, decoded) = (new[] { 7f, 7f }, new[] { 7f, 7f }, new[] { 7f }, new[] { 7f }, new[] { 7f });
        model.Infer([], 0, mu, logVar, reconstruction, score, 1, default);
        model.Decode([], 0, decoded);
        new[] { mu, logVar, reconstruction, score, decoded }.Should().AllSatisfy(o => o.Should().OnlyContain(v => v == 7f));
        model.EncoderPasses.Should().Be(0);
    }

    [Fact]
    public void A_disposed_model_refuses_every_pass_and_frees_a_returned_input_batch()
    {
        var model = Mlp();
        var one = new float[2];
        model.Infer(Rows(1, 1), 1, one, default, default, default, 1, default); // builds the managed one-row path
        var kept = model.RentInputBatch(4);
        model.ReturnInputBatch(kept);
        model.Dispose();
        Action readKept = () => kept.Row(0);
        readKept.Should().Throw<ObjectDisposedException>("disposing the model frees the batch it kept");
        model.Dispose(); // twice is fine

        var calls = new Action[]
        {
            () => model.Infer(Rows(1, 1), 1, one, default, default, default, 1, default),
            () => model.Infer(Rows(2, 1), 2, new float[4], default, default, default, 1, default),
            () => model.Decode(new float[2], 1, new float[Width]),
            () => model.GetParameters(),
            () => model.UnderForwardLock(() => 0),
        };
        foreach (var call in calls)
        {
            call.Should().Throw<ObjectDisposedException>();
        }

        using var batch = new InputBatch(4, Width);
        var infer = () => model.InferBatch(batch, 1, new float[2], default, default, default, 1, [RowValues.InRange]);
        infer.Should().Throw<ObjectDisposedException>();
        model.ReturnInputBatch(batch);
        Action read = () => batch.Row(0);
        read.Should().Throw<ObjectDisposedException>("nothing would free a batch kept by a disposed model");
    }

    [Fact]
    public void A_returned_input_batch_is_lent_again_only_for_the_same_capacity_and_one_is_kept()
    {
        using var model = Mlp();
        var first = model.RentInputBatch(8);
        (first.Capacity, first.Width).Should().Be((8, Width));
        model.ReturnInputBatch(first);
        model.RentInputBatch(8).Should().BeSameAs(first);

        model.ReturnInputBatch(first);
        var larger = model.RentInputBatch(16);
        larger.Should().NotBeSameAs(first);
        larger.Capacity.Should().Be(16);
        Action readFirst = () => first.Row(0);
        readFirst.Should().Throw<ObjectDisposedException>("a kept batch of another capacity is freed");

        var other = new InputBatch(16, Width);
        model.ReturnInputBatch(larger);
        model.ReturnInputBatch(other);
        Action readOther = () => other.Row(0);
        readOther.Should().Throw<ObjectDisposedException>("only one batch is kept");
        model.RentInputBatch(16).Should().BeSameAs(larger);
        larger.Dispose();
    }

    [Fact]
    public void Parameters_that_do_not_match_the_architecture_are_refused_by_name()
    {
        using var model = Mlp();
        var missing = Parameters(model);
        missing.Remove("fc4.bias");
        var act = () => model.SetParameters(missing);
        act.Should().Throw<InvalidDataException>().WithMessage("*missing [fc4.bias], unexpected []*");

        var extra = Parameters(model);
        extra["fc5.weight"] = ([1], [0f]);
        act = () => model.SetParameters(extra);
        act.Should().Throw<InvalidDataException>().WithMessage("*missing [], unexpected [fc5.weight]*");

        var shape = Parameters(model);
        shape["fc1.weight"] = ([6, 5], new float[30]);
        act = () => model.SetParameters(shape);
        act.Should().Throw<InvalidDataException>().WithMessage("Parameter 'fc1.weight' has shape [6, 5]; the architecture needs [5, 6].");

        using var gaussian = VaeModel.Create(new VaeNetworkSpec(VaeArchitecture.Mlp, Width, [5], 2, null, VaeLikelihood.Gaussian), 1, "cpu");
        foreach (var name in new[] { GaussianDecoder.MeanName, GaussianDecoder.StdName })
        {
            var standardization = Parameters(gaussian);
            standardization[name] = ([Width], new float[Width - 1]);
            act = () => gaussian.SetParameters(standardization);
            act.Should().Throw<InvalidDataException>().WithMessage($"Parameter '{name}' has 5 values; the architecture needs 6.");
        }
    }

    [Fact]
    public void New_parameters_replace_the_weights_of_the_one_row_path_and_the_standardization()
    {
        using var model = Mlp(seed: 1);
        var row = Rows(1, 3);
        var before = new float[1];
        model.Infer(row, 1, default, default, default, before, 1, default); // the one-row path copies these weights

        using var other = Mlp(seed: 2);
        model.SetParameters(Parameters(other));
        var after = new float[1];
        model.Infer(row, 1, default, default, default, after, 1, default);
        var (bce, kl) = new ReferenceVae(other.GetParameters()).LossAtMean(row);
        ((double)after[0]).Should().BeApproximately(bce + kl, 1e-5 * (bce + kl), "one row is scored with the new weights");
        after[0].Should().NotBe(before[0]);

        using var gaussian = VaeModel.Create(new VaeNetworkSpec(VaeArchitecture.Mlp, Width, [5], 2, null, VaeLikelihood.Gaussian), 1, "cpu");
        var values = Parameters(gaussian);
        values[GaussianDecoder.MeanName] = ([Width], [1, 2, 3, 4, 5, 6]);
        values[GaussianDecoder.StdName] = ([Width], [2, 2, 2, 4, 4, 4]);
        gaussian.SetParameters(values);
        gaussian.Standardization!.Mean.Should().Equal(1, 2, 3, 4, 5, 6);
        gaussian.Standardization.Std.Should().Equal(2, 2, 2, 4, 4, 4);

        // What GetParameters hands out is a copy: changing it leaves the model alone.
        var copy = gaussian.GetParameters();
        copy.Select(p => p.Name).Should().Equal(gaussian.Architecture.Layout.Select(t => t.Name));
        copy.Single(p => p.Name == GaussianDecoder.MeanName).Values[0] = 100;
        copy.Single(p => p.Name == GaussianDecoder.StdName).Values[0] = 100;
        gaussian.Standardization.Mean[0].Should().Be(1);
        gaussian.Standardization.Std[0].Should().Be(2);
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("cpu")]
    [InlineData(" CPU ")]
    [InlineData("cuda")]
    [InlineData("Cuda:1")]
    [InlineData("cuda:12")]
    public void Valid_device_names(string device) => VaeModel.CheckDeviceName(device);

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:x")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:+1")]
    [InlineData("cuda: 1")]
    [InlineData("cuda1")]
    [InlineData("cpu:0")]
    public void Invalid_device_names_are_refused_by_option(string? device)
    {
        var act = () => VaeModel.CheckDeviceName(device);
        act.Should().Throw<ArgumentOutOfRangeException>().Where(e => e.ParamName == "Device");
    }

    [Theory]
    [InlineData("cpu", null, false, true, 2, "Device = \"cpu\"")]
    [InlineData("auto", null, false, false, 0, "Device = \"auto\" and TorchSharp reports no CUDA device")]
    [InlineData("auto", null, false, true, 1, "Device = \"auto\" and CUDA is available (MLContext.GpuDeviceId is not set)")]
    [InlineData("auto", 1, false, true, 2, "Device = \"auto\" and MLContext.GpuDeviceId = 1")]
    [InlineData("auto", 2, true, true, 2, "MLContext.GpuDeviceId = 2 asks for CUDA device 2, but 2 CUDA device(s) are present; MLContext.FallbackToCpu is true")]
    [InlineData("auto", 0, true, false, 0, "MLContext.GpuDeviceId = 0 asks for CUDA device 0, but TorchSharp reports no CUDA device; MLContext.FallbackToCpu is true")]
    [InlineData(" CUDA:1 ", null, false, true, 2, "Device = \"cuda:1\"")]
    public void The_device_choice_says_why(string device, int? gpu, bool fallback, bool cuda, int count, string why)
        => VaeModel.ChooseDevice(device, new GpuRequest(gpu, fallback), cuda, count).Why.Should().Be(why);

    [Fact]
    public void On_this_cpu_only_machine_cpu_and_auto_resolve_to_the_cpu()
    {
        VaeModel.ResolveDevice("cpu").Should().Be((torch.CPU, "Device = \"cpu\""));
        var (device, why) = VaeModel.ResolveDevice("auto");
        device.type.Should().Be(DeviceType.CPU);
        why.Should().Be("Device = \"auto\" and TorchSharp reports no CUDA device");
        var act = () => VaeModel.ResolveDevice("cuda:0");
        act.Should().Throw<InvalidOperationException>().WithMessage("Device 'cuda:0' was requested but TorchSharp reports no CUDA device*");
        using var model = Mlp();
        (model.Device.type, model.DeviceChoice).Should().Be((DeviceType.CPU, "Device = \"cpu\""));
    }

    private static VaeOptions Options(VaeArchitecture architecture, int[] hidden, int latent, int[]? image)
        => new() { Architecture = architecture, HiddenSizes = hidden, LatentDimension = latent, ImageShape = image };

    public static TheoryData<VaeArchitecture, int[], int, int[]?, int?, string, string> Problems => new()
    {
        { (VaeArchitecture)7, [4], 2, null, 6, "Architecture", "Architecture 7 is not a VaeArchitecture (Mlp or Convolutional).*" },
        { VaeArchitecture.Mlp, [4], 2, null, 0, "FeatureColumnName", "the input size 0 is not positive.*" },
        { VaeArchitecture.Mlp, [4], 0, null, 6, "LatentDimension", "LatentDimension must be at least 1, not 0.*" },
        { VaeArchitecture.Mlp, [], 2, null, 6, "HiddenSizes", "HiddenSizes must hold at least one layer width, each at least 1.*" },
        { VaeArchitecture.Mlp, [4, 0], 2, null, 6, "HiddenSizes", "HiddenSizes must hold*" },
        { VaeArchitecture.Mlp, [4], 2, [2, 3], 6, "ImageShape", "ImageShape must be [channels, height, width] with every size at least 1 (e.g. [1, 28, 28]), not [2, 3].*" },
        { VaeArchitecture.Mlp, [4], 2, [1, 0, 6], 6, "ImageShape", "*not [1, 0, 6].*" },
        { VaeArchitecture.Convolutional, [4], 2, null, 16, "ImageShape", "ImageShape is required for Architecture Convolutional*" },
        { VaeArchitecture.Convolutional, [4], 2, [1, 30, 28], 840, "ImageShape", "ImageShape [1, 30, 28]: *divisible by 4; pad or crop the images (e.g. to 32×28)*" },
        { VaeArchitecture.Convolutional, [4], 2, [1, 28, 29], 812, "ImageShape", "*divisible by 4; pad or crop the images (e.g. to 28×32)*" },
        { VaeArchitecture.Mlp, [int.MaxValue / 4], 2, null, 784, "HiddenSizes", "a layer has more weights than one array can hold.*" },
        { VaeArchitecture.Convolutional, [4], 2, [1, 400_000, 400_000], null, "HiddenSizes", "the layer sizes overflow.*" },
        { VaeArchitecture.Mlp, [1000], 2, [1, 50_000, 50_000], null, "HiddenSizes", "a layer has more weights than one array can hold.*" },
    };

    [Theory]
    [MemberData(nameof(Problems))]
    public void Each_architecture_problem_names_its_option(VaeArchitecture architecture, int[] hidden, int latent, int[]? image, int? inputSize, string option, string message)
    {
        var act = () => VaeNetworkSpec.CheckOptions(Options(architecture, hidden, latent, image), inputSize);
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage(message).Where(e => e.ParamName == option);
    }

    [Fact]
    public void An_image_shape_that_does_not_hold_the_vector_is_an_argument_error_checked_only_when_the_size_is_known()
    {
        var options = Options(VaeArchitecture.Mlp, [4], 2, [1, 8, 8]);
        var act = () => VaeNetworkSpec.CheckOptions(options, 63);
        act.Should().Throw<ArgumentException>().Where(e => e.GetType() == typeof(ArgumentException) && e.ParamName == "ImageShape")
            .WithMessage("ImageShape [1, 8, 8] holds 64 values per row, but the feature column has 63; their product must equal the vector size.*");
        VaeNetworkSpec.CheckOptions(options);
        VaeNetworkSpec.CheckOptions(options, 64);
    }

    [Fact]
    public void The_smallest_networks_are_valid()
    {
        VaeNetworkSpec.FromOptions(Options(VaeArchitecture.Mlp, [1], 1, null), 1).Should().Be(VaeNetworkSpec.Mlp(1, [1], 1));
        VaeNetworkSpec.FromOptions(Options(VaeArchitecture.Convolutional, [1], 1, [1, 4, 4]), 16)
            .Should().Be(new VaeNetworkSpec(VaeArchitecture.Convolutional, 16, [1], 1, [1, 4, 4]));
        VaeNetworkSpec.Mlp(1, [1], 1).Problem().Should().BeNull();
        VaeNetworkSpec.CheckOptions(Options(VaeArchitecture.Mlp, [Array.MaxLength], 1, null), 1); // each tensor exactly as large as an array can be
        VaeNetworkSpec.Mlp(6, [], 2).Problem().Should().Be("HiddenSizes must hold at least one layer width, each at least 1");
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 64, [4], 2, [1, 8, 8]).Problem().Should().BeNull();
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 63, [4], 2, [1, 8, 8]).Problem()!.Should().StartWith("ImageShape [1, 8, 8] holds 64 values per row");
    }

    [Fact]
    public void Networks_are_described_and_compared_by_every_part()
    {
        VaeNetworkSpec.Mlp(784, [400], 2).Describe().Should().Be("784-400-2");
        VaeNetworkSpec.Mlp(64, [16, 8], 3).Describe().Should().Be("64-16-8-3");
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 784, [400], 2, [1, 28, 28]).Describe().Should().Be("conv 1x28x28-400-2");
        VaeNetworkSpec.FormatSizes([1, 28, 28]).Should().Be("1,28,28");
        VaeNetworkSpec.Mlp(784, [400], 2).ToString().Should().Be("784-400-2 Mlp Bernoulli", "an MLP has no feature maps to print");
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 784, [400], 2, [1, 28, 28], VaeLikelihood.Gaussian).ToString()
            .Should().Be("conv 1x28x28-400-2 Convolutional Gaussian");
        new VaeNetworkSpec(VaeArchitecture.Convolutional, 3 * 8 * 12, [4], 2, [3, 8, 12]).FeatureMapShape.Should().Equal(64, 2, 3);

        var spec = VaeNetworkSpec.Mlp(64, [16, 8], 3);
        var same = VaeNetworkSpec.Mlp(64, [16, 8], 3);
        spec.Should().Be(same);
        spec.GetHashCode().Should().Be(same.GetHashCode());
        spec.Equals(null).Should().BeFalse();
        var different = new[]
        {
            VaeNetworkSpec.Mlp(65, [16, 8], 3),
            VaeNetworkSpec.Mlp(64, [16, 9], 3),
            VaeNetworkSpec.Mlp(64, [16], 3),
            VaeNetworkSpec.Mlp(64, [16, 8], 2),
            spec! with { Likelihood = VaeLikelihood.Gaussian },
            spec with { Kind = VaeArchitecture.Convolutional },
            spec with { ImageShape = [1, 8, 8] },
        };
        different.Should().AllSatisfy(d => spec.Equals(d).Should().BeFalse(d.ToString()));
        (spec with { ImageShape = [1, 8, 8] }).Equals(spec).Should().BeFalse();
        (spec with { ImageShape = [1, 8, 8] }).Equals(spec with { ImageShape = [1, 8, 8] }).Should().BeTrue();
    }

    [Fact]
    public void The_convolutional_decoder_mirrors_the_hidden_sizes()
    {
        var layers = new VaeNetworkSpec(VaeArchitecture.Convolutional, 2 * 4 * 12, [5, 4], 3, [2, 4, 12]).Layers;
        layers.EncoderDense.Select(l => $"{l.Name} {l.Inputs}->{l.Outputs}").Should().Equal("enc_fc1 192->5", "enc_fc2 5->4");
        layers.DecoderDense.Select(l => $"{l.Name} {l.Inputs}->{l.Outputs}").Should().Equal("dec_fc1 3->4", "dec_fc2 4->5", "dec_fc3 5->192");
    }

    [Fact]
    public void The_gaussian_layout_ends_with_the_log_variance_and_the_standardization()
    {
        var layout = new VaeNetworkSpec(VaeArchitecture.Mlp, Width, [5], 2, null, VaeLikelihood.Gaussian).Layout;
        layout.Select(t => $"{t.Name} {t.ShapeText}").TakeLast(3).Should().Equal(
            "decoder_log_var [6]", "standardization.mean [6]", "standardization.std [6]");
        VaeNetworkSpec.Mlp(Width, [5], 2).Layout.Should().HaveCount(10);
        GaussianDecoder.IsStandardization(GaussianDecoder.MeanName).Should().BeTrue();
        GaussianDecoder.IsStandardization(GaussianDecoder.StdName).Should().BeTrue();
        GaussianDecoder.IsStandardization(GaussianDecoder.LogVarianceName).Should().BeFalse();
        GaussianDecoder.MinLogVariance.Should().Be(Math.Log(1e-3));
    }

    [Fact]
    public void A_standardization_needs_as_many_finite_means_as_finite_positive_deviations()
    {
        var act = () => new FeatureStandardization([0, 0], [1]);
        act.Should().Throw<ArgumentException>().WithMessage("Standardization has 2 means but 1 standard deviations.");
        foreach (var (mean, std) in new (float, float)[] { (float.NaN, 1), (float.PositiveInfinity, 1), (0, 0), (0, -1), (0, float.NaN), (0, float.PositiveInfinity) })
        {
            act = () => new FeatureStandardization([0, mean], [1, std]);
            act.Should().Throw<InvalidDataException>($"mean {mean}, std {std}");
        }

        var standardization = new FeatureStandardization([1, -2], [2, 0.5f]);
        standardization.LogStdSum.Should().BeApproximately(Math.Log(2) + Math.Log(0.5), 1e-12);
        standardization.Width.Should().Be(2);
        using var x = torch.tensor(new float[] { 3, -1, 0, 0 }, new long[] { 2, 2 });
        using var standardized = standardization.Standardize(x);
        standardized.data<float>().ToArray().Should().Equal(1, 2, -0.5f, 4);
        using var back = standardization.Unstandardize(standardized);
        back.data<float>().ToArray().Should().Equal(3, -1, 0, 0);
        var identity = FeatureStandardization.Identity(3);
        identity.Mean.Should().Equal(0, 0, 0);
        identity.Std.Should().Equal(1, 1, 1);
        identity.LogStdSum.Should().Be(0);
    }

    [Fact]
    public void The_built_standardization_is_the_population_mean_and_deviation_with_constant_columns_only_centred()
    {
        // Columns: spread 2 around 5; constant 3; spread 1 around 1e6 (below float resolution × 10 of its mean);
        // spread 1e-31 around 0 (below 1e-30); spread 1e-5 around 1 (kept: above float resolution × 10).
        var rows = new[]
        {
            new[] { 3f, 3f, 999_999f, -1e-31f, 1f - 1e-5f },
            new[] { 7f, 3f, 1_000_001f, 1e-31f, 1f + 1e-5f },
        };
        var builder = new FeatureStandardization.Builder(5);
        foreach (var row in rows)
        {
            builder.Add(row);
        }

        var built = builder.Build();
        built.Mean.Should().Equal(5f, 3f, 1_000_000f, 0f, 1f);
        built.Std[0].Should().Be(2f);
        built.Std[1..4].Should().Equal(1f, 1f, 1f);
        ((double)built.Std[4]).Should().BeApproximately(1e-5, 1e-7);

        var empty = new FeatureStandardization.Builder(2).Build();
        empty.Mean.Should().Equal(0, 0);
        empty.Std.Should().Equal(1, 1);
    }
}

/// <summary>Tests that read torch's global generator: alone, so no other test's draws come in between.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRandomStream
{
    public const string Name = "Torch's global random stream";
}

/// <summary>Creating a model: seeded weights in PyTorch's module order, and the application's own random stream untouched.</summary>
[Collection(GlobalRandomStream.Name)]
public class ModelCreationRandomStreamTests
{
    /// <summary>TorchSharp's native library is loaded (and patched on Debian 12) by the library; these tests call torch first.</summary>
    public ModelCreationRandomStreamTests() => Vae.ML.Runtime.TorchRuntime.EnsureInitialized();

    private const int Width = 6;

    [Fact]
    public void Creating_a_model_draws_its_weights_like_pytorchs_module_order_and_leaves_the_global_stream_alone()
    {
        const long seed = 41;
        float[] expectedWeights;
        float[] expectedAfterInit;
        {
            // PyTorch's script: manual_seed, then fc1, fc21, fc22, fc3, fc4 in order, then randn from the same stream.
            torch.random.manual_seed(seed).Dispose();
            using (var fc1 = nn.Linear(Width, 5))
            using (var fc21 = nn.Linear(5, 2))
            using (var fc22 = nn.Linear(5, 2))
            using (var fc3 = nn.Linear(2, 5))
            using (var fc4 = nn.Linear(5, Width))
            {
                expectedWeights = fc4.weight!.data<float>().ToArray();
            }

            using var next = torch.randn(5);
            expectedAfterInit = next.data<float>().ToArray();

            // The application's stream: what it draws next does not depend on a VAE being created in between.
            torch.random.manual_seed(99).Dispose();
            using var undisturbed = torch.randn(4);
            torch.random.manual_seed(99).Dispose();
            using var model = VaeModel.Create(VaeNetworkSpec.Mlp(Width, [5], 2), seed, "cpu");
            using var drawn = torch.randn(4);
            drawn.data<float>().ToArray().Should().Equal(undisturbed.data<float>().ToArray());

            model.GetParameters().Single(p => p.Name == "fc4.weight").Values.Should().Equal(expectedWeights);
            using var generator = model.CreateGeneratorAfterInit(seed);
            using var continued = torch.randn(new long[] { 5 }, generator: generator);
            continued.data<float>().ToArray().Should().Equal(expectedAfterInit, "the training run's generator continues where the seeded initialisation stopped");
        }
    }
}
