using Microsoft.ML;
using Vae.ML.Torch;

namespace Vae.ML.Tests.Expectations;

/// <summary>
/// The report's VAE written out from its formulas in double precision, independent of TorchSharp and of Vae.ML's loss
/// code: Linear(x) = W·x + b with PyTorch's [out, in] weight layout, ReLU between layers, μ = fc21(h), log σ² = fc22(h),
/// decoder fc3 → … → fc4, and
/// BCE(x, p) = −Σ_j [x_j log p_j + (1 − x_j) log(1 − p_j)], p = sigmoid(logits),
/// KL = −½ Σ_k (1 + log σ²_k − μ_k² − σ²_k).
/// </summary>
internal sealed class ReferenceVae
{
    private readonly Dictionary<string, (long[] Shape, float[] Values)> _parameters;
    private readonly string[] _encoder;
    private readonly string[] _decoder;

    public ReferenceVae(IEnumerable<(string Name, long[] Shape, float[] Values)> parameters)
    {
        _parameters = parameters.ToDictionary(p => p.Name, p => (p.Shape, p.Values));
        var hiddenLayers = _parameters.Keys.Count(name => name.StartsWith("fc1", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal));
        _encoder = Enumerable.Range(0, hiddenLayers).Select(i => i == 0 ? "fc1" : $"fc1_{i}").ToArray();
        _decoder = [.. Enumerable.Range(0, hiddenLayers).Select(i => i == 0 ? "fc3" : $"fc3_{i}"), "fc4"];
    }

    public (double[] Mu, double[] LogVar) Encode(ReadOnlySpan<float> x)
    {
        var h = x.ToArray().Select(v => (double)v).ToArray();
        foreach (var layer in _encoder)
        {
            h = Relu(Linear(layer, h));
        }

        return (Linear("fc21", h), Linear("fc22", h));
    }

    public double[] DecodeLogits(double[] z)
    {
        var h = z;
        for (var i = 0; i < _decoder.Length; i++)
        {
            h = Linear(_decoder[i], h);
            if (i < _decoder.Length - 1)
            {
                h = Relu(h);
            }
        }

        return h;
    }

    public static double Sigmoid(double logit) => 1 / (1 + Math.Exp(-logit));

    public static double Bce(ReadOnlySpan<float> x, double[] logits)
    {
        double sum = 0;
        for (var j = 0; j < x.Length; j++)
        {
            var p = Sigmoid(logits[j]);
            sum -= x[j] * Math.Log(p) + (1 - x[j]) * Math.Log(1 - p);
        }

        return sum;
    }

    public static double Kl(double[] mu, double[] logVar)
    {
        double sum = 0;
        for (var k = 0; k < mu.Length; k++)
        {
            sum += 1 + logVar[k] - mu[k] * mu[k] - Math.Exp(logVar[k]);
        }

        return -0.5 * sum;
    }

    /// <summary>The Score column's definition: BCE + β·KL with the decoder fed z = μ.</summary>
    public (double Bce, double Kl) LossAtMean(ReadOnlySpan<float> x)
    {
        var (mu, logVar) = Encode(x);
        return (Bce(x, DecodeLogits(mu)), Kl(mu, logVar));
    }

    private double[] Linear(string layer, double[] input)
    {
        var (shape, weight) = _parameters[layer + ".weight"];
        var bias = _parameters[layer + ".bias"].Values;
        int outputs = (int)shape[0], inputs = (int)shape[1];
        input.Length.Should().Be(inputs, $"{layer} takes {inputs} inputs");
        var output = new double[outputs];
        for (var o = 0; o < outputs; o++)
        {
            double sum = bias[o];
            for (var i = 0; i < inputs; i++)
            {
                sum += (double)weight[o * inputs + i] * input[i];
            }

            output[o] = sum;
        }

        return output;
    }

    private static double[] Relu(double[] values) => values.Select(v => Math.Max(v, 0)).ToArray();

    /// <summary>
    /// A transformer around a network whose every weight is given by a formula (not drawn), so the expectations
    /// above do not depend on any initialisation.
    /// </summary>
    public static VaeTransformer KnownWeights(int inputSize, int[] hiddenSizes, int latentDimension, double beta)
    {
        var model = VaeModel.Create(VaeNetworkSpec.Mlp(inputSize, hiddenSizes, latentDimension), seed: 0, "cpu");
        var known = new Dictionary<string, (long[] Shape, float[] Values)>();
        var layer = 0;
        foreach (var (name, shape, values) in model.GetParameters())
        {
            layer++;
            var scale = 1.5f / MathF.Sqrt(shape[^1]);
            known[name] = (shape, Enumerable.Range(0, values.Length).Select(k => scale * MathF.Sin(0.7f * k + 1.3f * layer)).ToArray());
        }

        model.SetParameters(known);
        return new VaeTransformer(new MLContext(seed: 0), model, VaeTransformer.ColumnNames.From(new VaeOptions()), beta, []);
    }
}
