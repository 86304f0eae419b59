using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Vae.ML.Torch;

/// <summary>
/// The report's MLP VAE. With one hidden size it is exactly the PyTorch original: fc1 → ReLU → (fc21 = μ, fc22 = log σ²);
/// decoder fc3 → ReLU → fc4 → sigmoid. Extra hidden sizes add layers named fc1_1, fc1_2, … (encoder) and
/// fc3_1, fc3_2, … (decoder) so that parameter names stay compatible with the original's state_dict.
/// </summary>
/// <remarks>The decoder returns logits; the loss uses them directly (numerically stable BCE) and the sigmoid is applied
/// only where probabilities are wanted.</remarks>
internal sealed class VaeNetwork : nn.Module<Tensor, (Tensor Logits, Tensor Mu, Tensor LogVar)>
{
    private readonly List<Linear> _encoderHidden = [];
    private readonly Linear _fc21;
    private readonly Linear _fc22;
    private readonly List<Linear> _decoderHidden = [];
    private readonly Linear _fc4;

    /// <param name="inputSize">Features per row.</param>
    /// <param name="hiddenSizes">Encoder widths; the decoder mirrors them.</param>
    /// <param name="latentDimension">Size of z.</param>
    /// <param name="gaussian">Adds the Gaussian decoder's learned per-feature log σ² (<see cref="GaussianDecoder.LogVarianceName"/>), initialised to 0.</param>
    public VaeNetwork(int inputSize, IReadOnlyList<int> hiddenSizes, int latentDimension, bool gaussian = false) : base("VAE")
    {
        InputSize = inputSize;
        LatentDimension = latentDimension;
        HiddenSizes = hiddenSizes.ToArray();

        // Creation order matches the original (fc1, fc21, fc22, fc3, fc4) so that a seeded init draws the same numbers.
        var width = inputSize;
        for (var i = 0; i < HiddenSizes.Count; i++)
        {
            _encoderHidden.Add(nn.Linear(width, HiddenSizes[i]));
            width = HiddenSizes[i];
        }

        _fc21 = nn.Linear(width, latentDimension);
        _fc22 = nn.Linear(width, latentDimension);

        width = latentDimension;
        for (var i = HiddenSizes.Count - 1; i >= 0; i--)
        {
            _decoderHidden.Add(nn.Linear(width, HiddenSizes[i]));
            width = HiddenSizes[i];
        }

        _fc4 = nn.Linear(width, inputSize);

        for (var i = 0; i < _encoderHidden.Count; i++)
        {
            register_module(i == 0 ? "fc1" : $"fc1_{i}", _encoderHidden[i]);
        }

        register_module("fc21", _fc21);
        register_module("fc22", _fc22);
        for (var i = 0; i < _decoderHidden.Count; i++)
        {
            register_module(i == 0 ? "fc3" : $"fc3_{i}", _decoderHidden[i]);
        }

        register_module("fc4", _fc4);

        // Zeros draw nothing from the generator, so a seeded Gaussian VAE starts from the same weights as a Bernoulli one.
        if (gaussian)
        {
            DecoderLogVariance = new Parameter(zeros(inputSize));
            register_parameter(GaussianDecoder.LogVarianceName, DecoderLogVariance);
        }
    }

    /// <summary>The Gaussian decoder's learned log σ² per feature; null for the Bernoulli decoder.</summary>
    public Parameter? DecoderLogVariance { get; }

    public int InputSize { get; }

    public int LatentDimension { get; }

    public IReadOnlyList<int> HiddenSizes { get; }

    public (Tensor Mu, Tensor LogVar) Encode(Tensor x)
    {
        var h = x;
        foreach (var layer in _encoderHidden)
        {
            h = F.relu(layer.forward(h));
        }

        return (_fc21.forward(h), _fc22.forward(h));
    }

    /// <summary>Decoder output: logits (Bernoulli; <c>sigmoid</c> of them is the reconstruction) or the Gaussian mean of the standardized features.</summary>
    public Tensor DecodeLogits(Tensor z)
    {
        var h = z;
        foreach (var layer in _decoderHidden)
        {
            h = F.relu(layer.forward(h));
        }

        return _fc4.forward(h);
    }

    /// <summary>Training forward: z = μ + ε·exp(½ log σ²), with ε drawn from <paramref name="generator"/>.</summary>
    public (Tensor Logits, Tensor Mu, Tensor LogVar) forward(Tensor x, Generator? generator)
    {
        var (mu, logVar) = Encode(x);
        var eps = randn(mu.shape, dtype: mu.dtype, device: mu.device, generator: generator);
        var z = mu + eps * exp(0.5 * logVar);
        return (DecodeLogits(z), mu, logVar);
    }

    public override (Tensor Logits, Tensor Mu, Tensor LogVar) forward(Tensor x) => forward(x, null);
}
