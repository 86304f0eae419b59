using Vae.ML.Torch;

namespace Vae.ML.Persistence;

/// <summary>One named tensor of the network, as PyTorch's state_dict names it.</summary>
internal sealed record TensorShape(string Name, long[] Shape)
{
    /// <summary>Number of elements (the product of <see cref="Shape"/>).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => checked(a * b));

    /// <summary>The shape as "[400, 784]" for messages.</summary>
    public string ShapeText => Describe(Shape);

    public static string Describe(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";
}

/// <summary>
/// The parameter names and shapes of <see cref="VaeNetwork"/> for an architecture, computed without TorchSharp so that a
/// file can be checked completely before any native memory is allocated. The order is the network's registration
/// order (named_parameters()): fc1, fc1_1…, fc21, fc22, fc3, fc3_1…, fc4, each weight then bias; for the Gaussian
/// likelihood then decoder_log_var and the standardization's mean and std (each [input size]).
/// </summary>
internal static class VaeParameterLayout
{
    public static IReadOnlyList<TensorShape> For(VaeArchitecture architecture)
    {
        var hidden = architecture.HiddenSizes;
        var result = new List<TensorShape>();
        void Linear(string name, int inputs, int outputs)
        {
            result.Add(new TensorShape(name + ".weight", [outputs, inputs]));
            result.Add(new TensorShape(name + ".bias", [outputs]));
        }

        var width = architecture.InputSize;
        for (var i = 0; i < hidden.Length; i++)
        {
            Linear(i == 0 ? "fc1" : $"fc1_{i}", width, hidden[i]);
            width = hidden[i];
        }

        Linear("fc21", width, architecture.LatentDimension);
        Linear("fc22", width, architecture.LatentDimension);
        width = architecture.LatentDimension;
        for (var i = 0; i < hidden.Length; i++)
        {
            var size = hidden[hidden.Length - 1 - i];
            Linear(i == 0 ? "fc3" : $"fc3_{i}", width, size);
            width = size;
        }

        Linear("fc4", width, architecture.InputSize);
        if (architecture.Likelihood == VaeLikelihood.Gaussian)
        {
            result.Add(new TensorShape(GaussianDecoder.LogVarianceName, [architecture.InputSize]));
            result.Add(new TensorShape(GaussianDecoder.MeanName, [architecture.InputSize]));
            result.Add(new TensorShape(GaussianDecoder.StdName, [architecture.InputSize]));
        }

        return result;
    }

    /// <summary>Why the architecture cannot describe a network, or null when it can.</summary>
    public static string? Problem(VaeArchitecture architecture)
    {
        if (architecture.InputSize < 1)
        {
            return $"input size {architecture.InputSize} is not positive";
        }

        if (architecture.LatentDimension < 1)
        {
            return $"latent dimension {architecture.LatentDimension} is not positive";
        }

        if (architecture.HiddenSizes is null || architecture.HiddenSizes.Length == 0 || architecture.HiddenSizes.Any(h => h < 1))
        {
            return "hidden sizes must hold at least one layer width, each at least 1";
        }

        // Every tensor must fit one .NET array; checked arithmetic also rejects absurd sizes before anything is allocated.
        try
        {
            if (For(architecture).Any(t => t.ElementCount > Array.MaxLength))
            {
                return "a layer has more weights than one array can hold";
            }
        }
        catch (OverflowException)
        {
            return "the layer sizes overflow";
        }

        return null;
    }
}

/// <summary>Everything a <see cref="VaeTransformer"/> is made of, detached from TorchSharp: what the formats store.</summary>
internal sealed record VaeSnapshot(
    VaeTransformer.ColumnNames Columns,
    VaeArchitecture Architecture,
    double Beta,
    IReadOnlyList<VaeEpochMetrics> History,
    IReadOnlyList<(string Name, long[] Shape, float[] Values)> Parameters)
{
    public static VaeSnapshot Of(VaeTransformer transformer)
        => new(transformer.Columns, transformer.Model.Architecture, transformer.Beta, transformer.History, transformer.Model.GetParameters());

    /// <summary>Builds a transformer on <paramref name="device"/>; nothing stays allocated when that fails.</summary>
    public VaeTransformer ToTransformer(Microsoft.ML.Runtime.IHostEnvironment env, string device)
    {
        var model = VaeModel.Create(Architecture, seed: 0, device);
        try
        {
            model.SetParameters(Parameters.ToDictionary(p => p.Name, p => (p.Shape, p.Values), StringComparer.Ordinal));
            return new VaeTransformer(env, model, Columns, Beta, History);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
