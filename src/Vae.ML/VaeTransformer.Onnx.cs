using Google.Protobuf;
using Vae.ML.Onnx;
using Vae.ML.Persistence;

namespace Vae.ML;

public sealed partial class VaeTransformer
{
    /// <summary>
    /// Writes this VAE as one ONNX model (opset 17) that serves without libtorch, e.g. through
    /// <c>mlContext.Transforms.ApplyOnnxModel(path)</c> or ONNX Runtime directly.
    /// </summary>
    /// <remarks>
    /// The model's input is named like <see cref="FeatureColumnName"/>, float[N, <see cref="InputSize"/>] with a dynamic
    /// batch dimension N; its outputs are named like the output columns: <see cref="LatentColumnName"/> and
    /// <see cref="LatentLogVarianceColumnName"/> float[N, <see cref="LatentDimension"/>], <see cref="ReconstructionColumnName"/>
    /// float[N, <see cref="InputSize"/>] and <see cref="ScoreColumnName"/> float[N]. They are computed as
    /// <see cref="Transform"/> computes them, for every architecture and likelihood, including the Gaussian likelihood's
    /// feature standardization (Reconstruction in raw units) and NaN outputs for a row with a NaN or infinite value.
    /// The file is written atomically: on failure any previous file at <paramref name="path"/> is unchanged.
    /// </remarks>
    /// <param name="path">The .onnx file to write.</param>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty.</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void ExportOnnx(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var model = VaeOnnxExporter.Export(VaeSnapshot.Of(this));
        AtomicFile.Write(path, model.WriteTo);
    }

    /// <summary>Writes this VAE as one ONNX model to <paramref name="stream"/>; see <see cref="ExportOnnx(string)"/>.</summary>
    /// <param name="stream">A writable stream; it is left open, positioned after the model.</param>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="stream"/> is not writable.</exception>
    public void ExportOnnx(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("The stream to export the ONNX model to must be writable.", nameof(stream));
        }

        VaeOnnxExporter.Export(VaeSnapshot.Of(this)).WriteTo(stream);
    }
}
