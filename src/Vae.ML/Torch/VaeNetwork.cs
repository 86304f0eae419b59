using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Vae.ML.Torch;

/// <summary>
/// The VAE module, built from a <see cref="VaeNetworkSpec"/>'s layers under their PyTorch names.
/// MLP (the report's network; exactly the PyTorch original with one hidden size): fc1 → ReLU → (fc21 = μ, fc22 = log σ²);
/// decoder fc3 → ReLU → fc4. Extra hidden sizes add fc1_1, fc1_2, … and fc3_1, fc3_2, ….
/// Convolutional (the Keras VAE example): the flat input is viewed as N×C×H×W, enc_conv1/enc_conv2 (stride 2) → ReLU,
/// flatten, enc_fc* → ReLU, (enc_mu, enc_logvar); decoder dec_fc* → ReLU, view as N×64×H/4×W/4, dec_deconv1/dec_deconv2
/// (stride 2) → ReLU, dec_deconv3 → logits, flattened back to N×(C·H·W).
/// </summary>
/// <remarks>The decoder returns logits; the loss uses them directly (numerically stable BCE) and the sigmoid is applied
/// only where probabilities are wanted.</remarks>
internal sealed class VaeNetwork : nn.Module<Tensor, (Tensor Logits, Tensor Mu, Tensor LogVar)>
{
    private readonly nn.Module<Tensor, Tensor>[] _encoderConvolutions;
    private readonly nn.Module<Tensor, Tensor>[] _encoderDense;
    private readonly nn.Module<Tensor, Tensor> _mu;
    private readonly nn.Module<Tensor, Tensor> _logVar;
    private readonly nn.Module<Tensor, Tensor>[] _decoderDense;
    private readonly nn.Module<Tensor, Tensor>[] _decoderConvolutions;

    public VaeNetwork(VaeNetworkSpec spec) : base("VAE")
    {
        Spec = spec;
        var layers = spec.Layers;

        // Creation order is layers.All (for the MLP the original's fc1, fc21, fc22, fc3, fc4) so that a seeded init
        // draws the same numbers; registration in the same order gives named_parameters() the files' order.
        var modules = new Dictionary<string, nn.Module<Tensor, Tensor>>(StringComparer.Ordinal);
        foreach (var layer in layers.All)
        {
            var module = Create(layer);
            modules.Add(layer.Name, module);
            register_module(layer.Name, module);
        }

        nn.Module<Tensor, Tensor>[] Of(IEnumerable<LayerSpec> role) => role.Select(l => modules[l.Name]).ToArray();
        _encoderConvolutions = Of(layers.EncoderConvolutions);
        _encoderDense = Of(layers.EncoderDense);
        _mu = modules[layers.Mu.Name];
        _logVar = modules[layers.LogVariance.Name];
        _decoderDense = Of(layers.DecoderDense);
        _decoderConvolutions = Of(layers.DecoderConvolutions);
        DecoderOutput = modules[layers.Output.Name];

        // The Gaussian decoder's learned log σ² per feature, after every layer. Zeros draw nothing from the generator,
        // so a seeded Gaussian VAE starts from the same weights as a Bernoulli one.
        if (spec.Likelihood == VaeLikelihood.Gaussian)
        {
            DecoderLogVariance = new Parameter(zeros(spec.InputSize));
            register_parameter(GaussianDecoder.LogVarianceName, DecoderLogVariance);
        }
    }

    public VaeNetworkSpec Spec { get; }

    /// <summary>The Gaussian decoder's learned log σ² per feature; null for the Bernoulli decoder.</summary>
    public Parameter? DecoderLogVariance { get; }

    /// <summary>The layer that produces the decoder's logits (fc4, or dec_deconv3).</summary>
    public nn.Module<Tensor, Tensor> DecoderOutput { get; }

    public (Tensor Mu, Tensor LogVar) Encode(Tensor x)
    {
        var h = x;
        if (_encoderConvolutions.Length > 0)
        {
            var image = Spec.ImageShape!;
            h = h.reshape(-1, image[0], image[1], image[2]);
            foreach (var layer in _encoderConvolutions)
            {
                h = F.relu(layer.forward(h));
            }

            h = h.flatten(1);
        }

        foreach (var layer in _encoderDense)
        {
            h = F.relu(layer.forward(h));
        }

        return (_mu.forward(h), _logVar.forward(h));
    }

    /// <summary>Decoder logits, rows × InputSize; <c>sigmoid</c> of them is the reconstruction.</summary>
    public Tensor DecodeLogits(Tensor z)
    {
        var h = z;
        foreach (var layer in _decoderDense)
        {
            h = F.relu(layer.forward(h));
        }

        if (_decoderConvolutions.Length == 0)
        {
            return DecoderOutput.forward(h);
        }

        var maps = Spec.FeatureMapShape;
        h = h.reshape(-1, maps[0], maps[1], maps[2]);
        foreach (var layer in _decoderConvolutions)
        {
            h = F.relu(layer.forward(h));
        }

        return DecoderOutput.forward(h).flatten(1);
    }

    /// <summary>Training forward: z = μ + ε·exp(½ log σ²), with ε drawn from <paramref name="generator"/>.</summary>
    public (Tensor Logits, Tensor Mu, Tensor LogVar) forward(Tensor x, Generator? generator)
    {
        var (mu, logVar) = Encode(x);
        var eps = randn(mu.shape, dtype: mu.dtype, device: mu.device, generator: generator);
        // exp(0.5 * logVar), with the scalar disposed here rather than by the finalizer (see VaeLoss.PerRow).
        using Scalar half = 0.5;
        var z = mu + eps * exp(logVar.mul(half));
        return (DecodeLogits(z), mu, logVar);
    }

    public override (Tensor Logits, Tensor Mu, Tensor LogVar) forward(Tensor x) => forward(x, null);

    private static nn.Module<Tensor, Tensor> Create(LayerSpec layer) => layer.Kind switch
    {
        LayerKind.Linear => nn.Linear(layer.Inputs, layer.Outputs),
        LayerKind.Convolution => nn.Conv2d(layer.Inputs, layer.Outputs, LayerSpec.KernelSize, stride: layer.Stride, padding: LayerSpec.Padding),
        _ => nn.ConvTranspose2d(layer.Inputs, layer.Outputs, LayerSpec.KernelSize, stride: layer.Stride, padding: LayerSpec.Padding,
            output_padding: layer.Stride - 1),
    };
}
