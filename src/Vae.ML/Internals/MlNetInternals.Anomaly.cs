using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Anomaly;
using Vae.ML.Internals;

// Found through the loader signature SetVersionInfo writes, like the VaeTransformer's registration in MlNetInternals.cs.
[assembly: LoadableClass(typeof(VaeAnomalyTransformer), typeof(MlNetInternals.VaeAnomalyLoader), null, typeof(SignatureLoadModel),
    "Variational autoencoder anomaly detector", MlNetInternals.AnomalyLoaderSignature)]

namespace Vae.ML.Internals;

/// <summary>The anomaly detector's use of ML.NET internals: its catalog's environment and its ML.NET model entry.</summary>
internal static partial class MlNetInternals
{
    /// <summary>Load name of a saved VaeAnomalyTransformer (at most 24 characters).</summary>
    public const string AnomalyLoaderSignature = "VaeMlAnomalyDetector";

    /// <summary>Sub-folder of the detector's entry that holds its VaeTransformer, saved as that transformer saves itself.</summary>
    private const string AnomalyVaeFolder = "Vae";

    /// <summary>The <see cref="IHostEnvironment"/> (the <see cref="MLContext"/>) behind the anomaly trainers' catalog.</summary>
    public static IHostEnvironment GetEnvironment(AnomalyDetectionCatalog.AnomalyDetectionTrainers catalog)
        => ((IInternalCatalog)catalog).Environment;

    /// <summary>
    /// 0x00010001: threshold (Single), contamination (Double, NaN when none), the PredictedLabel column name, then the
    /// VAE in the sub-folder <see cref="AnomalyVaeFolder"/>.
    /// </summary>
    private static VersionInfo GetAnomalyVersionInfo() => new(
        modelSignature: "VAEMLANO",
        verWrittenCur: 0x00010001,
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: AnomalyLoaderSignature,
        loaderAssemblyName: typeof(VaeAnomalyTransformer).Assembly.FullName);

    /// <summary>Writes an anomaly detector into an ML.NET model (<c>mlContext.Model.Save</c> calls this through ICanSaveModel).</summary>
    public static void SaveAnomalyDetector(ModelSaveContext ctx, VaeTransformer vae, float threshold, double? contamination)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        Guard(() =>
        {
            ctx.CheckAtModel();
            ctx.SetVersionInfo(GetAnomalyVersionInfo());
            ctx.Writer.Write(threshold);
            ctx.Writer.Write(contamination ?? double.NaN);
            ctx.SaveNonEmptyString(VaeAnomalyTransformer.PredictedLabelColumnName);
            ctx.SaveModel(vae, AnomalyVaeFolder);
        });
    }

    /// <summary>The factory ML.NET's ComponentCatalog calls (found by <c>LoadableClass</c> above) to load a detector.</summary>
    internal static class VaeAnomalyLoader
    {
        /// <summary>Factory for SignatureLoadModel.</summary>
        public static VaeAnomalyTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
        {
            ArgumentNullException.ThrowIfNull(env);
            ArgumentNullException.ThrowIfNull(ctx);
            var threshold = 0f;
            var contamination = double.NaN;
            VaeTransformer? vae = null;
            Guard(() =>
            {
                ctx.CheckAtModel(GetAnomalyVersionInfo());
                threshold = ctx.Reader.ReadSingle();
                contamination = ctx.Reader.ReadDouble();
                var predictedLabel = ctx.LoadNonEmptyString();
                if (predictedLabel != VaeAnomalyTransformer.PredictedLabelColumnName)
                {
                    throw new InvalidDataException(
                        $"The ML.NET model's anomaly detector in '{ctx.Directory}' names its Boolean column '{predictedLabel}'; this Vae.ML writes '{VaeAnomalyTransformer.PredictedLabelColumnName}'.");
                }

                if (!float.IsFinite(threshold) || !(double.IsNaN(contamination) || contamination is >= 0 and < 1))
                {
                    throw new InvalidDataException(
                        $"The ML.NET model's anomaly detector in '{ctx.Directory}' is corrupt: threshold {threshold}, contamination {contamination}.");
                }

                ctx.LoadModel<VaeTransformer, SignatureLoadModel>(env, out vae, AnomalyVaeFolder);
            });
            try
            {
                return new VaeAnomalyTransformer(env, vae!, threshold, double.IsNaN(contamination) ? null : contamination);
            }
            catch
            {
                vae?.Dispose();
                throw;
            }
        }
    }
}
