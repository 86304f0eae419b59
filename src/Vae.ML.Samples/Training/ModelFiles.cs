using Microsoft.ML;

namespace Vae.ML.Samples.Training;

/// <summary>Saving and loading trained models (model.vae).</summary>
internal static class ModelFiles
{
    // TEMPORARY until the persistence issue lands VaeTransformer.Save/Load on main; then these call them.
    private const string NotYet = "Saving and loading models needs VaeTransformer.Save/Load, which is not in this build of Vae.ML yet.";

    /// <summary>Whether this build can save and load models.</summary>
    public static bool Available => false;

    public static void Save(VaeTransformer model, string path) => throw new NotSupportedException(NotYet);

    public static VaeTransformer Load(MLContext mlContext, string path) => throw new NotSupportedException(NotYet);
}
