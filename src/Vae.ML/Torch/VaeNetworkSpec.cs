using System.Globalization;
using Vae.ML.Persistence;

namespace Vae.ML.Torch;

/// <summary>How a layer maps its input: a dense layer, or a 3×3 (transposed) convolution with padding 1 ("same").</summary>
internal enum LayerKind
{
    Linear,
    Convolution,
    TransposedConvolution,
}

/// <summary>One layer: its state_dict name, kind and sizes (features for dense layers, channels for convolutions).</summary>
internal sealed record LayerSpec(string Name, LayerKind Kind, int Inputs, int Outputs, int Stride = 1)
{
    public const int KernelSize = 3;

    /// <summary>"Same" padding for a 3×3 kernel; a stride-2 transposed convolution adds <c>Stride - 1</c> output padding to double the size exactly.</summary>
    public const int Padding = 1;

    /// <summary>Its parameters in PyTorch's layout: Linear [out, in], Conv2d [out, in, k, k], ConvTranspose2d [in, out, k, k]; then the bias [out].</summary>
    public IEnumerable<TensorShape> Tensors()
    {
        yield return new TensorShape(Name + ".weight", Kind switch
        {
            LayerKind.Linear => [Outputs, Inputs],
            LayerKind.Convolution => [Outputs, Inputs, KernelSize, KernelSize],
            _ => [Inputs, Outputs, KernelSize, KernelSize],
        });
        yield return new TensorShape(Name + ".bias", [Outputs]);
    }
}

/// <summary>
/// The layers of a network by role. Every hidden layer is followed by a ReLU; <see cref="Output"/> gives the logits.
/// <see cref="All"/> is the creation order, which is also the order of named_parameters() and of the files.
/// </summary>
internal sealed record VaeLayers(
    IReadOnlyList<LayerSpec> EncoderConvolutions,
    IReadOnlyList<LayerSpec> EncoderDense,
    LayerSpec Mu,
    LayerSpec LogVariance,
    IReadOnlyList<LayerSpec> DecoderDense,
    IReadOnlyList<LayerSpec> DecoderConvolutions,
    LayerSpec Output)
{
    public IEnumerable<LayerSpec> All =>
        EncoderConvolutions.Concat(EncoderDense).Append(Mu).Append(LogVariance).Concat(DecoderDense).Concat(DecoderConvolutions).Append(Output);
}

/// <summary>
/// Everything that defines a VAE network: the architecture, its sizes, its layers and their PyTorch names, and the one
/// validation of all of it. The network (<see cref="VaeNetwork"/>), the model file's tensor list and metadata, and
/// checkpoints all derive from this type, without TorchSharp, so a file can be checked before native memory is used.
/// </summary>
/// <param name="Kind">MLP or convolutional.</param>
/// <param name="InputSize">Values per row (the feature vector's size).</param>
/// <param name="HiddenSizes">Dense hidden widths of the encoder, mirrored by the decoder.</param>
/// <param name="LatentDimension">Size of the latent space.</param>
/// <param name="ImageShape">[channels, height, width] of a row, or null; required for <see cref="VaeArchitecture.Convolutional"/>.</param>
/// <param name="Likelihood">The decoder's distribution; the Gaussian one adds the learned log σ² and the standardization.</param>
internal sealed record VaeNetworkSpec(VaeArchitecture Kind, int InputSize, int[] HiddenSizes, int LatentDimension, int[]? ImageShape,
    VaeLikelihood Likelihood = VaeLikelihood.Bernoulli)
{
    /// <summary>Channels of the encoder's two stride-2 convolutions (the decoder's transposed convolutions mirror them), as in the Keras example.</summary>
    public static readonly IReadOnlyList<int> ConvolutionChannels = [32, 64];

    /// <summary>Each stride-2 convolution halves height and width, so the convolutional VAE needs both divisible by this.</summary>
    public const int SizeDivisor = 4;

    /// <summary>The report's kind of network: fc1 (fc1_1 …) → fc21/fc22, fc3 (fc3_1 …) → fc4.</summary>
    public static VaeNetworkSpec Mlp(int inputSize, int[] hiddenSizes, int latentDimension) => new(VaeArchitecture.Mlp, inputSize, hiddenSizes, latentDimension, null);

    /// <summary>The network the options describe for rows of <paramref name="inputSize"/> values.</summary>
    /// <exception cref="ArgumentException">The options cannot describe such a network; the parameter name is the option's.</exception>
    public static VaeNetworkSpec FromOptions(VaeOptions options, int inputSize)
    {
        CheckOptions(options, inputSize);
        return new VaeNetworkSpec(options.Architecture, inputSize, options.HiddenSizes.ToArray(), options.LatentDimension, options.ImageShape?.ToArray(),
            options.Likelihood);
    }

    /// <summary>Checks the architecture options; the input size too when known (at Fit), not when unknown (when the trainer is created).</summary>
    /// <exception cref="ArgumentException">The parameter name is the faulty option's.</exception>
    public static void CheckOptions(VaeOptions options, int? inputSize = null)
    {
        if (FindProblem(options.Architecture, inputSize, options.HiddenSizes, options.LatentDimension, options.ImageShape) is { } problem)
        {
            throw problem.Option == nameof(VaeOptions.ImageShape) && problem.SizeMismatch
                ? new ArgumentException(problem.Message + ".", problem.Option)
                : new ArgumentOutOfRangeException(problem.Option, problem.Message + ".");
        }
    }

    /// <summary>Why this cannot describe a network (for a file reader's "corrupt" message), or null when it can.</summary>
    public string? Problem() => FindProblem(Kind, InputSize, HiddenSizes, LatentDimension, ImageShape)?.Message;

    /// <summary>The layers, named as PyTorch modules would be: the report's names for the MLP, enc_*/dec_* for the convolutional VAE.</summary>
    public VaeLayers Layers => Kind == VaeArchitecture.Convolutional ? ConvolutionalLayers() : MlpLayers();

    /// <summary>
    /// Every parameter tensor in creation order: what named_parameters() returns and what the files hold; for the
    /// Gaussian likelihood then decoder_log_var and the standardization's mean and std (each [input size]).
    /// </summary>
    public IReadOnlyList<TensorShape> Layout => Layers.All.SelectMany(layer => layer.Tensors()).Concat(GaussianTensors()).ToList();

    private IEnumerable<TensorShape> GaussianTensors() => Likelihood == VaeLikelihood.Gaussian
        ? [new(GaussianDecoder.LogVarianceName, [InputSize]), new(GaussianDecoder.MeanName, [InputSize]), new(GaussianDecoder.StdName, [InputSize])]
        : [];

    /// <summary>[channels, height, width] of the decoder's first feature maps (and of the encoder's last ones).</summary>
    public int[] FeatureMapShape => [ConvolutionChannels[^1], ImageShape![1] / SizeDivisor, ImageShape[2] / SizeDivisor];

    /// <summary>"784-400-2" for an MLP, "conv 1x28x28-400-2" for a convolutional VAE.</summary>
    public string Describe() => Kind == VaeArchitecture.Convolutional
        ? $"conv {string.Join("x", ImageShape ?? [])}-{string.Join("-", HiddenSizes)}-{LatentDimension}"
        : $"{InputSize}-{string.Join("-", HiddenSizes)}-{LatentDimension}";

    /// <summary>"784-400-2 Mlp Bernoulli": the record's generated ToString read every property, and FeatureMapShape throws for an MLP.</summary>
    public override string ToString() => $"{Describe()} {Kind} {Likelihood}";

    /// <summary>Value equality (a record compares arrays by reference).</summary>
    public bool Equals(VaeNetworkSpec? other)
        => other is not null && Kind == other.Kind && InputSize == other.InputSize && LatentDimension == other.LatentDimension && Likelihood == other.Likelihood
            && HiddenSizes.SequenceEqual(other.HiddenSizes)
            && (ImageShape is null ? other.ImageShape is null : other.ImageShape is not null && ImageShape.SequenceEqual(other.ImageShape));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, InputSize, LatentDimension, HiddenSizes.Length, ImageShape?.Length);

    /// <summary>"1,28,28" as written in metadata.</summary>
    public static string FormatSizes(IEnumerable<int> sizes) => string.Join(",", sizes.Select(s => s.ToString(CultureInfo.InvariantCulture)));

    private VaeLayers MlpLayers()
    {
        var encoder = new List<LayerSpec>();
        var width = InputSize;
        for (var i = 0; i < HiddenSizes.Length; i++)
        {
            encoder.Add(new LayerSpec(i == 0 ? "fc1" : $"fc1_{i}", LayerKind.Linear, width, HiddenSizes[i]));
            width = HiddenSizes[i];
        }

        var mu = new LayerSpec("fc21", LayerKind.Linear, width, LatentDimension);
        var logVariance = new LayerSpec("fc22", LayerKind.Linear, width, LatentDimension);
        var decoder = new List<LayerSpec>();
        width = LatentDimension;
        for (var i = 0; i < HiddenSizes.Length; i++)
        {
            var size = HiddenSizes[HiddenSizes.Length - 1 - i];
            decoder.Add(new LayerSpec(i == 0 ? "fc3" : $"fc3_{i}", LayerKind.Linear, width, size));
            width = size;
        }

        return new VaeLayers([], encoder, mu, logVariance, decoder, [], new LayerSpec("fc4", LayerKind.Linear, width, InputSize));
    }

    /// <summary>
    /// Keras VAE example, generalised to C×H×W: enc_conv1 (C→32, stride 2), enc_conv2 (32→64, stride 2), flatten,
    /// enc_fc1… (HiddenSizes), enc_mu / enc_logvar; dec_fc1… (HiddenSizes mirrored), dec_fcN+1 to 64×H/4×W/4, dec_deconv1
    /// (64→64, stride 2), dec_deconv2 (64→32, stride 2), dec_deconv3 (32→C, stride 1) = logits.
    /// </summary>
    private VaeLayers ConvolutionalLayers()
    {
        var channels = ImageShape![0];
        var maps = FeatureMapShape;
        var flattened = checked(maps[0] * maps[1] * maps[2]);
        var convolutions = new List<LayerSpec>();
        var width = channels;
        for (var i = 0; i < ConvolutionChannels.Count; i++)
        {
            convolutions.Add(new LayerSpec($"enc_conv{i + 1}", LayerKind.Convolution, width, ConvolutionChannels[i], Stride: 2));
            width = ConvolutionChannels[i];
        }

        var encoder = new List<LayerSpec>();
        width = flattened;
        for (var i = 0; i < HiddenSizes.Length; i++)
        {
            encoder.Add(new LayerSpec($"enc_fc{i + 1}", LayerKind.Linear, width, HiddenSizes[i]));
            width = HiddenSizes[i];
        }

        var mu = new LayerSpec("enc_mu", LayerKind.Linear, width, LatentDimension);
        var logVariance = new LayerSpec("enc_logvar", LayerKind.Linear, width, LatentDimension);
        var decoder = new List<LayerSpec>();
        width = LatentDimension;
        foreach (var size in Enumerable.Reverse(HiddenSizes).Append(flattened))
        {
            decoder.Add(new LayerSpec($"dec_fc{decoder.Count + 1}", LayerKind.Linear, width, size));
            width = size;
        }

        var transposed = new List<LayerSpec>();
        width = maps[0];
        foreach (var size in Enumerable.Reverse(ConvolutionChannels))
        {
            transposed.Add(new LayerSpec($"dec_deconv{transposed.Count + 1}", LayerKind.TransposedConvolution, width, size, Stride: 2));
            width = size;
        }

        var output = new LayerSpec($"dec_deconv{transposed.Count + 1}", LayerKind.TransposedConvolution, width, channels);
        return new VaeLayers(convolutions, encoder, mu, logVariance, decoder, transposed, output);
    }

    /// <summary>The one check of an architecture; each message names the option to change.</summary>
    private static (string Option, string Message, bool SizeMismatch)? FindProblem(
        VaeArchitecture kind, int? inputSize, int[]? hiddenSizes, int latentDimension, int[]? imageShape)
    {
        if (!Enum.IsDefined(kind))
        {
            return (nameof(VaeOptions.Architecture), $"Architecture {(int)kind} is not a {nameof(VaeArchitecture)} ({string.Join(" or ", Enum.GetNames<VaeArchitecture>())})", false);
        }

        if (inputSize < 1)
        {
            return (nameof(VaeOptions.FeatureColumnName), $"the input size {inputSize} is not positive", false);
        }

        if (latentDimension < 1)
        {
            return (nameof(VaeOptions.LatentDimension), $"LatentDimension must be at least 1, not {latentDimension}", false);
        }

        if (hiddenSizes is null || hiddenSizes.Length == 0 || hiddenSizes.Any(h => h < 1))
        {
            return (nameof(VaeOptions.HiddenSizes), "HiddenSizes must hold at least one layer width, each at least 1", false);
        }

        if (imageShape is not null && (imageShape.Length != 3 || imageShape.Any(s => s < 1)))
        {
            return (nameof(VaeOptions.ImageShape),
                $"ImageShape must be [channels, height, width] with every size at least 1 (e.g. [1, 28, 28]), not [{string.Join(", ", imageShape)}]", false);
        }

        if (kind == VaeArchitecture.Convolutional)
        {
            if (imageShape is null)
            {
                return (nameof(VaeOptions.ImageShape),
                    "ImageShape is required for Architecture Convolutional: the [channels, height, width] of each row's image, e.g. [1, 28, 28] for MNIST", false);
            }

            if (imageShape[1] % SizeDivisor != 0 || imageShape[2] % SizeDivisor != 0)
            {
                return (nameof(VaeOptions.ImageShape),
                    $"ImageShape [{string.Join(", ", imageShape)}]: the convolutional VAE halves height and width twice (stride-2 convolutions), " +
                    $"so both must be divisible by {SizeDivisor}; pad or crop the images (e.g. to {RoundUp(imageShape[1])}×{RoundUp(imageShape[2])}) or use Architecture Mlp", false);
            }
        }

        if (imageShape is not null && inputSize is int size)
        {
            var product = imageShape.Aggregate(1L, (a, b) => a * b);
            if (product != size)
            {
                return (nameof(VaeOptions.ImageShape),
                    $"ImageShape [{string.Join(", ", imageShape)}] holds {product} values per row, but the feature column has {size}; their product must equal the vector size", true);
            }
        }

        // Every tensor must fit one .NET array; checked arithmetic also rejects absurd sizes before anything is allocated.
        try
        {
            var spec = new VaeNetworkSpec(kind, inputSize ?? (int)Math.Min(int.MaxValue, imageShape?.Aggregate(1L, (a, b) => a * b) ?? 1), hiddenSizes, latentDimension, imageShape);
            if (spec.Layout.Any(t => t.ElementCount > Array.MaxLength))
            {
                return (nameof(VaeOptions.HiddenSizes), "a layer has more weights than one array can hold", false);
            }
        }
        catch (OverflowException)
        {
            return (nameof(VaeOptions.HiddenSizes), "the layer sizes overflow", false);
        }

        return null;
    }

    private static int RoundUp(int size) => (size + SizeDivisor - 1) / SizeDivisor * SizeDivisor;
}
