using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Vae.ML.Internals;

/// <summary>
/// Every use of ML.NET's non-public surface lives in this file. Vae.ML compiles against publicized copies of
/// Microsoft.ML.Core/Data (build/MlNetInternals.targets) and declares IgnoresAccessChecksTo for them, so these calls
/// run against the real assemblies. A change in ML.NET breaks here, in one place, and the tests in
/// MlNetInternalsTests fail loudly.
/// </summary>
internal static class MlNetInternals
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
}
