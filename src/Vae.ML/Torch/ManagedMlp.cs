using System.Buffers;
using System.Numerics.Tensors;

namespace Vae.ML.Torch;

/// <summary>
/// An MLP VAE's forward pass for ONE row in managed code (<see cref="TensorPrimitives"/>), on a copy of the weights.
/// For a single row libtorch's fixed cost per call (dispatch, .NET↔native crossings, tensor handles) is far larger than
/// the arithmetic, so the prediction engine and one-row array calls come here. It computes what
/// <see cref="VaeModel.Infer"/>'s libtorch path computes (same layers, same loss terms, same standardization); the
/// values agree within float rounding (the order of the sums differs), not bit for bit. Convolutional networks have no
/// managed path and stay on libtorch (VaeModel decides; a convolutional layer here is refused by <see cref="ManagedLinear"/>).
/// </summary>
/// <remarks>
/// Thread-safe: the weights are read-only and every call rents its own scratch buffers. Inputs must be finite (the
/// caller zeroes non-finite rows first, as for the libtorch path). Nothing native is allocated, so scoring single rows
/// does not touch the native heap at all.
/// </remarks>
internal sealed class ManagedMlp
{
    private readonly ManagedLinear[] _encoder;
    private readonly ManagedLinear _mu;
    private readonly ManagedLinear _logVariance;
    private readonly ManagedLinear[] _decoder;
    private readonly ManagedLinear _output;
    private readonly float[]? _mean;
    private readonly float[]? _std;
    private readonly float[]? _decoderLogVariance;
    private readonly double _logStdSum;
    private readonly int _scratch;

    private ManagedMlp(VaeNetworkSpec spec, IReadOnlyDictionary<string, (long[] Shape, float[] Values)> parameters, FeatureStandardization? standardization)
    {
        var layers = spec.Layers;
        ManagedLinear Of(LayerSpec layer) => new(layer, parameters[layer.Name + ".weight"].Values, parameters[layer.Name + ".bias"].Values);
        _encoder = layers.EncoderDense.Select(Of).ToArray();
        _mu = Of(layers.Mu);
        _logVariance = Of(layers.LogVariance);
        _decoder = layers.DecoderDense.Select(Of).ToArray();
        _output = Of(layers.Output);
        InputSize = spec.InputSize;
        LatentDimension = spec.LatentDimension;
        _scratch = layers.All.Max(l => Math.Max(l.Inputs, l.Outputs));
        if (spec.Likelihood == VaeLikelihood.Gaussian)
        {
            _mean = standardization!.Mean;
            _std = standardization.Std;
            _logStdSum = standardization.LogStdSum;
            _decoderLogVariance = parameters[GaussianDecoder.LogVarianceName].Values;
        }
    }

    public int InputSize { get; }

    public int LatentDimension { get; }

    /// <summary>The managed forward for the MLP <paramref name="spec"/>.</summary>
    /// <param name="spec">The network.</param>
    /// <param name="parameters">Its parameters by PyTorch name (<see cref="VaeModel.GetParameters"/>).</param>
    /// <param name="standardization">The Gaussian likelihood's standardization (null for Bernoulli).</param>
    public static ManagedMlp Create(VaeNetworkSpec spec, IEnumerable<(string Name, long[] Shape, float[] Values)> parameters, FeatureStandardization? standardization)
        => new(spec, parameters.ToDictionary(p => p.Name, p => (p.Shape, p.Values), StringComparer.Ordinal), standardization);

    /// <summary>
    /// One row through the network, as <see cref="VaeModel.Infer"/> defines the outputs; an empty span skips that
    /// output (the decoder runs only for <paramref name="reconstruction"/> or <paramref name="score"/>).
    /// </summary>
    public void Infer(ReadOnlySpan<float> input, Span<float> mu, Span<float> logVar, Span<float> reconstruction, Span<float> score, double beta)
    {
        var pool = ArrayPool<float>.Shared;
        var a = pool.Rent(_scratch);
        var b = pool.Rent(_scratch);
        var latent = pool.Rent(2 * LatentDimension);
        var standardized = _mean is null ? null : pool.Rent(InputSize);
        try
        {
            // Standardize as FeatureStandardization does: (x − mean) / std.
            var x = input;
            if (standardized is not null)
            {
                var s = standardized.AsSpan(0, InputSize);
                TensorPrimitives.Subtract(input, _mean, s);
                TensorPrimitives.Divide(s, _std, s);
                x = s;
            }

            // Encoder: dense layers with ReLU, then the two heads.
            ReadOnlySpan<float> h = x;
            var (current, next) = (a, b);
            foreach (var layer in _encoder)
            {
                h = layer.Forward(h, current, relu: true);
                (current, next) = (next, current);
            }

            var m = _mu.Forward(h, latent.AsSpan(0, LatentDimension), relu: false);
            var lv = _logVariance.Forward(h, latent.AsSpan(LatentDimension, LatentDimension), relu: false);
            if (!mu.IsEmpty)
            {
                m.CopyTo(mu);
            }

            if (!logVar.IsEmpty)
            {
                lv.CopyTo(logVar);
            }
            if (reconstruction.IsEmpty && score.IsEmpty)
            {
                return;
            }

            // Decoder at z = μ: dense layers with ReLU, then the output layer's logits (Gaussian: standardized means).
            ReadOnlySpan<float> d = m;
            foreach (var layer in _decoder)
            {
                d = layer.Forward(d, current, relu: true);
                (current, next) = (next, current);
            }

            var decoded = _output.Forward(d, current, relu: false);
            if (!score.IsEmpty)
            {
                score[0] = (float)(Reconstruction(decoded, x) + (beta * GaussianLatent.Kl(m, lv)));
            }

            if (!reconstruction.IsEmpty)
            {
                if (_mean is null)
                {
                    TensorPrimitives.Sigmoid(decoded, reconstruction);
                }
                else
                {
                    TensorPrimitives.Multiply(decoded, _std, reconstruction);
                    TensorPrimitives.Add(reconstruction, _mean, reconstruction);
                }
            }
        }
        finally
        {
            pool.Return(a);
            pool.Return(b);
            pool.Return(latent);
            if (standardized is not null)
            {
                pool.Return(standardized);
            }
        }
    }

    /// <summary>
    /// The row's reconstruction term, as <see cref="VaeLoss.PerRow"/>: Σ BCE-with-logits, or the raw-unit Gaussian NLL.
    /// Each term and the sum in double, so the managed rounding stays well below the float result's.
    /// </summary>
    private double Reconstruction(ReadOnlySpan<float> decoded, ReadOnlySpan<float> x)
    {
        var sum = 0.0;
        if (_decoderLogVariance is null)
        {
            for (var i = 0; i < decoded.Length; i++)
            {
                // max(l, 0) − l·x + log(1 + e^−|l|): binary cross-entropy of sigmoid(l) without log(0).
                double l = decoded[i];
                sum += Math.Max(l, 0) - (l * x[i]) + Math.Log(1 + Math.Exp(-Math.Abs(l)));
            }

            return sum;
        }

        for (var i = 0; i < decoded.Length; i++)
        {
            var logVariance = Math.Max(_decoderLogVariance[i], GaussianDecoder.MinLogVariance);
            var difference = (double)x[i] - decoded[i];
            sum += 0.5 * ((difference * difference * Math.Exp(-logVariance)) + logVariance + LogTwoPi);
        }

        return sum + _logStdSum;
    }

    private static readonly double LogTwoPi = Math.Log(2 * Math.PI);
}

/// <summary>
/// One dense layer y = W·x + b for a single row. Wide layers keep Wᵀ ([in, out]) and add x_i·Wᵀ[i] for each non-zero
/// x_i, so the zeros of ReLU outputs and of sparse inputs (most MNIST pixels) cost nothing; narrow layers (the latent
/// heads) keep W ([out, in]) and take one dot product per output.
/// </summary>
internal sealed class ManagedLinear
{
    /// <summary>Below this many outputs a dot product per output beats one short axpy per input.</summary>
    private const int NarrowOutputs = 16;

    private readonly float[] _weights;
    private readonly float[] _bias;
    private readonly int _inputs;
    private readonly int _outputs;
    private readonly bool _transposed;

    public ManagedLinear(LayerSpec layer, float[] weight, float[] bias)
    {
        if (layer.Kind != LayerKind.Linear || weight.Length != (long)layer.Inputs * layer.Outputs || bias.Length != layer.Outputs)
        {
            throw new ArgumentException($"Layer '{layer.Name}' is not a {layer.Outputs}×{layer.Inputs} dense layer.", nameof(layer));
        }

        _inputs = layer.Inputs;
        _outputs = layer.Outputs;
        _bias = bias;
        _transposed = _outputs >= NarrowOutputs;
        if (!_transposed)
        {
            _weights = weight;
            return;
        }

        _weights = new float[weight.Length];
        for (var o = 0; o < _outputs; o++)
        {
            for (var i = 0; i < _inputs; i++)
            {
                _weights[(i * _outputs) + o] = weight[(o * _inputs) + i];
            }
        }
    }

    /// <summary>Writes W·x + b (ReLU'd when <paramref name="relu"/>) into <paramref name="output"/>'s first values and returns them.</summary>
    public Span<float> Forward(ReadOnlySpan<float> x, Span<float> output, bool relu)
    {
        var y = output[.._outputs];
        if (_transposed)
        {
            _bias.CopyTo(y);
            var weights = _weights.AsSpan();
            for (var i = 0; i < _inputs; i++)
            {
                if (x[i] != 0)
                {
                    TensorPrimitives.MultiplyAdd(weights.Slice(i * _outputs, _outputs), x[i], y, y);
                }
            }
        }
        else
        {
            for (var o = 0; o < _outputs; o++)
            {
                y[o] = TensorPrimitives.Dot(_weights.AsSpan(o * _inputs, _inputs), x) + _bias[o];
            }
        }

        if (relu)
        {
            TensorPrimitives.Max(y, 0f, y);
        }

        return y;
    }
}
