using Vae.ML.Torch;

namespace Vae.ML.Persistence;

/// <summary>Everything a <see cref="VaeTransformer"/> is made of, detached from TorchSharp: what the formats store.</summary>
internal sealed record VaeSnapshot(
    VaeTransformer.ColumnNames Columns,
    VaeNetworkSpec Architecture,
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
