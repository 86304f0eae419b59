using Microsoft.ML;
using Vae.ML.Persistence;

namespace Vae.ML;

/// <summary>Saving ML.NET models so that a failure never costs the previous file.</summary>
public static class ModelOperationsExtensions
{
    /// <summary>
    /// Saves <paramref name="model"/> exactly as <c>mlContext.Model.Save(model, inputSchema, filePath)</c> does, but
    /// atomically: ML.NET's own overload truncates the target before writing, so a full disk or an exception midway
    /// leaves neither the old model nor a new one. This writes a temporary file in the same directory and renames it
    /// over <paramref name="filePath"/> only when complete. Load the result with <c>mlContext.Model.Load</c> as usual.
    /// </summary>
    /// <param name="catalog">The context's model operations, <c>mlContext.Model</c>.</param>
    /// <param name="model">The trained transformer or chain.</param>
    /// <param name="inputSchema">The schema of the data the model expects, or null.</param>
    /// <param name="filePath">The ".zip" file to create or replace.</param>
    /// <exception cref="IOException">Writing failed (a full disk, say); the message names <paramref name="filePath"/> and the previous file is intact.</exception>
    public static void SaveAtomically(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema, string filePath)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        AtomicFile.Write(filePath, stream => catalog.Save(model, inputSchema, stream));
    }
}
