using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML;
using Vae.ML.Internals;
using Vae.ML.Persistence;

// ML.NET finds this through the loader assembly name that SetVersionInfo writes into every saved VaeTransformer, so a
// process that never touched Vae.ML can load a model without ComponentCatalog.RegisterAssembly.
[assembly: LoadableClass(typeof(VaeTransformer), typeof(MlNetInternals.VaeTransformerLoader), null, typeof(SignatureLoadModel),
    "Variational autoencoder", MlNetInternals.LoaderSignature)]

namespace Vae.ML.Internals;

/// <summary>
/// Every use of ML.NET's non-public surface lives in this file. Vae.ML compiles against publicized copies of
/// Microsoft.ML.Core/Data (build/MlNetInternals.targets) and declares IgnoresAccessChecksTo for them, so these calls
/// run against the real assemblies. A change in ML.NET breaks here, in one place, and the tests in
/// Persistence/MlNetContractTests fail loudly.
/// </summary>
internal static partial class MlNetInternals
{
    /// <summary>The <see cref="IHostEnvironment"/> (the <see cref="MLContext"/>) behind a catalog.</summary>
    public static IHostEnvironment GetEnvironment(TransformsCatalog catalog)
        => ((IInternalCatalog)catalog).Environment;

    /// <summary>Whether the host has been cancelled (<c>MLContext.CancelExecution</c>, which is internal to ML.NET).</summary>
    public static bool IsCancelled(IHost host) => host is ICancelable { IsCanceled: true };

    /// <summary>ML.NET's own "stop everything" (<c>MLContext.CancelExecution</c> is internal); used by tests.</summary>
    public static void CancelExecution(MLContext mlContext) => mlContext.CancelExecution();

    /// <summary>A column requirement or promise for <see cref="IEstimator{TTransformer}.GetOutputSchema"/>.</summary>
    public static SchemaShape.Column VectorColumn(string name, DataViewType itemType)
        => new(name, SchemaShape.Column.VectorKind.Vector, itemType, isKey: false);

    /// <summary>A scalar column for <see cref="IEstimator{TTransformer}.GetOutputSchema"/>.</summary>
    public static SchemaShape.Column ScalarColumn(string name, DataViewType itemType)
        => new(name, SchemaShape.Column.VectorKind.Scalar, itemType, isKey: false);

    /// <summary>Finds a column of a <see cref="SchemaShape"/> by name (ML.NET's TryFindColumn is internal).</summary>
    public static bool TryFindColumn(SchemaShape shape, string name, out SchemaShape.Column column)
        => shape.TryFindColumn(name, out column);

    /// <summary>A column's type as ML.NET words it in its own messages, e.g. "Vector&lt;Single&gt;".</summary>
    public static string Describe(SchemaShape.Column column) => column.GetTypeString();

    /// <summary>The <see cref="SchemaShape"/> of a schema (ML.NET's estimator chains compute it the same way).</summary>
    public static SchemaShape ShapeOf(DataViewSchema schema) => SchemaShape.Create(schema);

    /// <summary>Adds or replaces columns of a <see cref="SchemaShape"/>, as ML.NET's estimators do.</summary>
    public static SchemaShape WithColumns(SchemaShape input, IEnumerable<SchemaShape.Column> columns)
    {
        var result = input.ToDictionary(c => c.Name);
        foreach (var column in columns)
        {
            result[column.Name] = column;
        }

        return new SchemaShape(result.Values);
    }

    /// <summary>Load name of a saved VaeTransformer (at most 24 characters: ML.NET stores it in three ulongs).</summary>
    public const string LoaderSignature = "VaeMlVaeTransformer";

    /// <summary>Name of the entry, inside the transformer's folder of the model zip, that holds the Vae.ML model file (safetensors).</summary>
    public const string ModelEntryName = "VaeModel.safetensors";

    /// <summary>The entry that models saved before format version 2 (entry version 0x00010001) hold, in the ".vae" format.</summary>
    public const string LegacyModelEntryName = "VaeModel.bin";

    /// <summary>The ML.NET assembly versions this file was written against; see docs/persistence.md.</summary>
    public const string SupportedMlNetVersions = "[5.0.1, 6.0)";

    /// <summary>
    /// Version of the transformer's ML.NET entry (not of the Vae.ML file inside it, which has its own).
    /// 0x00010001: <see cref="LegacyModelEntryName"/> holds a ".vae" model file (read, never written).
    /// 0x00010002: <see cref="ModelEntryName"/> holds the safetensors model file; older Vae.ML refuses it as too new.
    /// </summary>
    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "VAEMLTRF",
        verWrittenCur: 0x00010002,
        verReadableCur: 0x00010002,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(VaeTransformer).Assembly.FullName);

    /// <summary>Writes a transformer into an ML.NET model (<c>mlContext.Model.Save</c> calls this through ICanSaveModel).</summary>
    public static void Save(ModelSaveContext ctx, VaeSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        Guard(() =>
        {
            ctx.CheckAtModel();
            ctx.SetVersionInfo(GetVersionInfo());
            ctx.SaveBinaryStream(ModelEntryName, writer =>
            {
                writer.Flush();
                VaeModelFormat.Write(writer.BaseStream, snapshot);
            });
        });
    }

    /// <summary>The factory ML.NET's ComponentCatalog calls (found by <c>LoadableClass</c> above) to load a transformer.</summary>
    internal static class VaeTransformerLoader
    {
        /// <summary>Factory for SignatureLoadModel. Loaded transformers go to the "auto" device.</summary>
        public static VaeTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
        {
            ArgumentNullException.ThrowIfNull(env);
            ArgumentNullException.ThrowIfNull(ctx);
            VaeSnapshot? snapshot = null;
            Guard(() =>
            {
                ctx.CheckAtModel(GetVersionInfo());
                var loaded = false;
                foreach (var entry in new[] { ModelEntryName, LegacyModelEntryName })
                {
                    loaded = ctx.TryLoadBinaryStream(entry, reader =>
                    {
                        var stream = reader.BaseStream;
                        var length = stream.CanSeek ? stream.Length - stream.Position : (long?)null;
                        snapshot = VaeModelFormat.Read(stream, $"The ML.NET model entry '{ctx.Directory}/{entry}'", length).Snapshot;
                    });
                    if (loaded)
                    {
                        break;
                    }
                }

                if (!loaded)
                {
                    throw new InvalidDataException(
                        $"The ML.NET model has a Vae.ML transformer in '{ctx.Directory}' but no '{ModelEntryName}' (or older '{LegacyModelEntryName}') entry with its weights.");
                }
            });
            return snapshot!.ToTransformer(env, "auto");
        }
    }

    /// <summary>
    /// Turns the errors the runtime raises when an ML.NET member this file uses has changed or disappeared into one that
    /// says which versions are supported, instead of a bare MissingMethodException deep in a save or load.
    /// </summary>
    private static void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is MissingMemberException or TypeLoadException or MemberAccessException)
        {
            throw new NotSupportedException(
                $"Vae.ML {typeof(MlNetInternals).Assembly.GetName().Version} supports Microsoft.ML {SupportedMlNetVersions}; this process runs " +
                $"Microsoft.ML.Core {typeof(IHostEnvironment).Assembly.GetName().Version}, which lacks a member Vae.ML relies on: {e.Message}", e);
        }
    }
}
