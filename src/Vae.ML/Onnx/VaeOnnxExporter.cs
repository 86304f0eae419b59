using System.Globalization;
using Vae.ML.Onnx.Protobuf;
using Vae.ML.Persistence;
using Vae.ML.Torch;
using static Vae.ML.Onnx.OnnxGraphBuilder;

namespace Vae.ML.Onnx;

/// <summary>
/// Translates a trained VAE into one ONNX graph that computes the transformer's four output columns exactly as
/// <see cref="VaeModel.Infer"/> does: (Gaussian: standardize) → encoder → μ, log σ²; decoder(μ) → reconstruction
/// (sigmoid, or the Gaussian mean mapped back to raw units) and the per-row score (reconstruction term + β·KL).
/// Each piece of the network is one function here, in the order <see cref="VaeNetwork"/> runs it; the layers and their
/// initializer names come from <see cref="VaeNetworkSpec.Layers"/>, i.e. the PyTorch state_dict names.
/// </summary>
internal static class VaeOnnxExporter
{
    private static readonly float LogTwoPi = (float)Math.Log(2 * Math.PI);

    /// <summary>A protobuf message, and so an ONNX file without external data, cannot exceed 2 GiB.</summary>
    private const long MaxWeightBytes = int.MaxValue - (16L << 20);

    public static ModelProto Export(VaeSnapshot snapshot)
    {
        var spec = snapshot.Architecture;
        var columns = snapshot.Columns;
        var parameters = snapshot.Parameters.ToDictionary(p => p.Name, p => (p.Shape, p.Values), StringComparer.Ordinal);
        var weightBytes = parameters.Values.Sum(p => 4L * p.Values.Length);
        if (weightBytes > MaxWeightBytes)
        {
            throw new NotSupportedException(
                $"The VAE {spec.Describe()} has {weightBytes / (1 << 20):N0} MiB of weights; one ONNX file holds at most 2 GiB, and export with external data is not supported.");
        }

        var graph = new OnnxGraphBuilder("vae");
        var x = graph.Input(columns.Feature, spec.InputSize);
        foreach (var (name, (shape, values)) in parameters)
        {
            graph.Initializer(name, shape, values);
        }

        var networkInput = spec.Likelihood == VaeLikelihood.Gaussian ? Standardize(graph, x) : x;
        var (mu, logVariance) = Encoder(graph, spec, networkInput);
        var decoded = Decoder(graph, spec, mu);
        // Σ log std turns the density of the standardized row into that of the raw row: a constant of the model.
        double? logStdSum = spec.Likelihood == VaeLikelihood.Gaussian
            ? new FeatureStandardization(parameters[GaussianDecoder.MeanName].Values, parameters[GaussianDecoder.StdName].Values).LogStdSum
            : null;
        var (reconstruction, reconstructionTerm) = logStdSum is double offset
            ? GaussianOutputs(graph, decoded, networkInput, offset)
            : BernoulliOutputs(graph, decoded, networkInput);
        var score = Score(graph, reconstructionTerm, mu, logVariance, snapshot.Beta);

        // A row with a NaN or ±∞ gets NaN in every output, as in Vae.ML. Each op here maps a row on its own, so the
        // other rows are unaffected; x·0 is 0 for finite values and NaN otherwise, and its row sum is added to each output.
        var rowNaN = graph.Node("ReduceSum", "nan", [graph.Node("Mul", "nan", [x, graph.Scalar("zero", 0f)]), graph.Int64s("axis1", 1)], Int("keepdims", 1));
        var rowNaNFlat = graph.Node("Reshape", "nan", [rowNaN, graph.Int64s("flat", -1)]);
        graph.Output(graph.Node("Add", "nan", [mu, rowNaN]), columns.Latent,
            "Latent mean μ (the encoder's mean).", spec.LatentDimension);
        graph.Output(graph.Node("Add", "nan", [logVariance, rowNaN]), columns.LatentLogVariance,
            "Latent log-variance log σ².", spec.LatentDimension);
        graph.Output(graph.Node("Add", "nan", [reconstruction, rowNaN]), columns.Reconstruction,
            spec.Likelihood == VaeLikelihood.Gaussian ? "decoder(μ): Gaussian means in the features' raw units." : "decoder(μ): Bernoulli probabilities.",
            spec.InputSize);
        graph.Output(graph.Node("Add", "nan", [score, rowNaNFlat]), columns.Score,
            "Per-row negative ELBO at z = μ: reconstruction term + β·KL (the anomaly score).");

        return graph.ToModel(
            $"Vae.ML VAE {spec.Describe()}, {spec.Likelihood} likelihood: input '{columns.Feature}' [N, {spec.InputSize}] → " +
            $"'{columns.Latent}', '{columns.LatentLogVariance}', '{columns.Reconstruction}', '{columns.Score}', as VaeTransformer.Transform computes them.",
            Metadata(snapshot, logStdSum));
    }

    /// <summary>(x − mean) / std per feature, as <see cref="FeatureStandardization.Standardize"/> (identity values when off).</summary>
    private static string Standardize(OnnxGraphBuilder graph, string x)
    {
        var centred = graph.Node("Sub", "standardize", [x, GaussianDecoder.MeanName]);
        return graph.Node("Div", "standardize", [centred, GaussianDecoder.StdName]);
    }

    /// <summary><see cref="VaeNetwork.Encode"/>: [convolutions → ReLU, flatten], dense → ReLU, then μ and log σ².</summary>
    private static (string Mu, string LogVariance) Encoder(OnnxGraphBuilder graph, VaeNetworkSpec spec, string x)
    {
        var layers = spec.Layers;
        var h = x;
        if (layers.EncoderConvolutions.Count > 0)
        {
            var image = spec.ImageShape!;
            h = graph.Node("Reshape", "encoder", [h, graph.Int64s("image_shape", -1, image[0], image[1], image[2])]);
            foreach (var layer in layers.EncoderConvolutions)
            {
                h = graph.Node("Relu", "encoder", [Layer(graph, layer, h, "encoder")]);
            }

            h = graph.Node("Flatten", "encoder", [h], Int("axis", 1));
        }

        foreach (var layer in layers.EncoderDense)
        {
            h = graph.Node("Relu", "encoder", [Layer(graph, layer, h, "encoder")]);
        }

        return (Layer(graph, layers.Mu, h, "encoder"), Layer(graph, layers.LogVariance, h, "encoder"));
    }

    /// <summary><see cref="VaeNetwork.DecodeLogits"/>: dense → ReLU, [view as feature maps, transposed convolutions → ReLU], output layer, flat.</summary>
    private static string Decoder(OnnxGraphBuilder graph, VaeNetworkSpec spec, string z)
    {
        var layers = spec.Layers;
        var h = z;
        foreach (var layer in layers.DecoderDense)
        {
            h = graph.Node("Relu", "decoder", [Layer(graph, layer, h, "decoder")]);
        }

        if (layers.DecoderConvolutions.Count == 0)
        {
            return Layer(graph, layers.Output, h, "decoder");
        }

        var maps = spec.FeatureMapShape;
        h = graph.Node("Reshape", "decoder", [h, graph.Int64s("feature_map_shape", -1, maps[0], maps[1], maps[2])]);
        foreach (var layer in layers.DecoderConvolutions)
        {
            h = graph.Node("Relu", "decoder", [Layer(graph, layer, h, "decoder")]);
        }

        return graph.Node("Flatten", "decoder", [Layer(graph, layers.Output, h, "decoder")], Int("axis", 1));
    }

    /// <summary>One layer of <see cref="LayerSpec"/>: Linear = Gemm(x, Wᵀ) + b; (transposed) 3×3 convolution with "same" padding.</summary>
    private static string Layer(OnnxGraphBuilder graph, LayerSpec layer, string input, string scope)
    {
        string[] inputs = [input, layer.Name + ".weight", layer.Name + ".bias"];
        const int k = LayerSpec.KernelSize, p = LayerSpec.Padding;
        return layer.Kind switch
        {
            LayerKind.Linear => graph.Node("Gemm", scope, inputs, Int("transB", 1)),
            LayerKind.Convolution => graph.Node("Conv", scope, inputs,
                Ints("kernel_shape", k, k), Ints("strides", layer.Stride, layer.Stride), Ints("pads", p, p, p, p)),
            _ => graph.Node("ConvTranspose", scope, inputs,
                Ints("kernel_shape", k, k), Ints("strides", layer.Stride, layer.Stride), Ints("pads", p, p, p, p),
                Ints("output_padding", layer.Stride - 1, layer.Stride - 1)),
        };
    }

    /// <summary>Bernoulli: reconstruction sigmoid(l); reconstruction term Σ BCE-with-logits = Σ [softplus(l) − x·l] per row.</summary>
    private static (string Reconstruction, string Term) BernoulliOutputs(OnnxGraphBuilder graph, string logits, string x)
    {
        var reconstruction = graph.Node("Sigmoid", "bernoulli", [logits]);
        var bce = graph.Node("Sub", "bernoulli", [graph.Node("Softplus", "bernoulli", [logits]), graph.Node("Mul", "bernoulli", [x, logits])]);
        return (reconstruction, RowSum(graph, bce, "bernoulli"));
    }

    /// <summary>
    /// Gaussian (<see cref="VaeLoss"/>): reconstruction mean·std + mean in raw units; reconstruction term
    /// Σ ½[(x − μ)²·exp(−log σ²) + log σ² + log 2π] + Σ log std, log σ² floored at <see cref="GaussianDecoder.MinLogVariance"/>,
    /// in the same order of operations as the libtorch path.
    /// </summary>
    private static (string Reconstruction, string Term) GaussianOutputs(OnnxGraphBuilder graph, string mean, string standardizedX, double logStdSum)
    {
        var reconstruction = graph.Node("Add", "gaussian", [graph.Node("Mul", "gaussian", [mean, GaussianDecoder.StdName]), GaussianDecoder.MeanName]);
        var logVariance = graph.Node("Max", "gaussian", [GaussianDecoder.LogVarianceName, graph.Scalar("min_log_variance", (float)GaussianDecoder.MinLogVariance)]);
        var residual = graph.Node("Sub", "gaussian", [standardizedX, mean]);
        var squared = graph.Node("Pow", "gaussian", [residual, graph.Scalar("two", 2f)]);
        var scaled = graph.Node("Mul", "gaussian", [squared, graph.Node("Exp", "gaussian", [graph.Node("Neg", "gaussian", [logVariance])])]);
        var perFeature = graph.Node("Mul", "gaussian",
            [graph.Node("Add", "gaussian", [graph.Node("Add", "gaussian", [scaled, logVariance]), graph.Scalar("log_two_pi", LogTwoPi)]), graph.Scalar("half", 0.5f)]);
        var term = graph.Node("Add", "gaussian", [RowSum(graph, perFeature, "gaussian"), graph.Scalar("log_std_sum", (float)logStdSum)]);
        return (reconstruction, term);
    }

    /// <summary>Reconstruction term + β·(−½ Σ [1 + log σ² − μ² − exp(log σ²)]), per row, as <see cref="VaeLoss.PerRow"/>.</summary>
    private static string Score(OnnxGraphBuilder graph, string reconstructionTerm, string mu, string logVariance, double beta)
    {
        var klTerms = graph.Node("Sub", "kl", [
            graph.Node("Sub", "kl", [graph.Node("Add", "kl", [logVariance, graph.Scalar("one", 1f)]), graph.Node("Pow", "kl", [mu, graph.Scalar("kl_two", 2f)])]),
            graph.Node("Exp", "kl", [logVariance])]);
        var kl = graph.Node("Mul", "kl", [RowSum(graph, klTerms, "kl"), graph.Scalar("minus_half", -0.5f)]);
        return graph.Node("Add", "score", [reconstructionTerm, graph.Node("Mul", "score", [kl, graph.Scalar("beta", (float)beta)])]);
    }

    /// <summary>Sum over the features of each row: [N, width] → [N].</summary>
    private static string RowSum(OnnxGraphBuilder graph, string value, string scope)
        => graph.Node("ReduceSum", scope, [value, graph.Int64s($"{scope}_axis", 1)], Int("keepdims", 0));

    /// <summary>What the model is, as ONNX metadata_props; "vae.score_offset" is the Gaussian score's constant Σ log std (the scale a score near 0 is computed at).</summary>
    private static IEnumerable<KeyValuePair<string, string>> Metadata(VaeSnapshot snapshot, double? logStdSum)
    {
        var spec = snapshot.Architecture;
        yield return new("vae.architecture", spec.Kind.ToString());
        yield return new("vae.network", spec.Describe());
        yield return new("vae.likelihood", spec.Likelihood.ToString());
        yield return new("vae.beta", snapshot.Beta.ToString("R", CultureInfo.InvariantCulture));
        yield return new("vae.input_size", spec.InputSize.ToString(CultureInfo.InvariantCulture));
        yield return new("vae.latent_dimension", spec.LatentDimension.ToString(CultureInfo.InvariantCulture));
        if (logStdSum is double offset)
        {
            yield return new("vae.score_offset", offset.ToString("R", CultureInfo.InvariantCulture));
        }

        if (spec.ImageShape is { } image)
        {
            yield return new("vae.image_shape", VaeNetworkSpec.FormatSizes(image));
        }
    }
}
