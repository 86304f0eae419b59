using Microsoft.ML;
using Microsoft.ML.Runtime;
using Vae.ML.Persistence;
using Vae.ML.Torch;

namespace Vae.ML;

public sealed partial class VaeTransformer
{
    /// <summary>
    /// Writes this transformer (column names, architecture, β, training history and weights) in Vae.ML's model format:
    /// a safetensors file whose tensors are the weights under PyTorch's names and whose metadata holds the rest, with
    /// SHA-256 sums; see docs/persistence.md. <c>safetensors.torch.load_file</c> reads it as a PyTorch state_dict, and
    /// <c>mlContext.Model.Save</c> of a chain holding this transformer stores the same bytes.
    /// </summary>
    /// <param name="stream">Where to write; it is left open.</param>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        VaeModelFormat.Write(stream, VaeSnapshot.Of(this));
    }

    /// <summary>
    /// Writes this transformer to a file (conventionally "*.safetensors"), atomically: a temporary file in the same
    /// directory is renamed over <paramref name="path"/> only once complete, so a failure leaves any previous file as it
    /// was and no temporary file behind.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <exception cref="IOException">Writing failed (a full disk, say); the message names <paramref name="path"/>.</exception>
    public void Save(string path)
    {
        var snapshot = VaeSnapshot.Of(this);
        AtomicFile.Write(path, stream => VaeModelFormat.Write(stream, snapshot));
    }

    /// <summary>
    /// Reads a transformer written by <see cref="Save(Stream)"/> (or, by an older Vae.ML, in the ".vae" format) onto
    /// the "auto" device (as <see cref="VaeOptions.Device"/> describes it: the <paramref name="mlContext"/>'s GpuDeviceId and FallbackToCpu, else CUDA when available, else CPU).
    /// </summary>
    /// <param name="mlContext">The ML.NET context the transformer will belong to.</param>
    /// <param name="stream">The stream, positioned at the model; it is left open, positioned just after the model.</param>
    /// <returns>The transformer; dispose it to free native memory.</returns>
    /// <exception cref="InvalidDataException">The stream does not hold a complete, intact Vae.ML model of a supported format version.</exception>
    public static VaeTransformer Load(MLContext mlContext, Stream stream) => Load(mlContext, stream, "auto");

    /// <summary>Reads a transformer written by <see cref="Save(Stream)"/> (or in the older ".vae" format) onto the given device.</summary>
    /// <param name="mlContext">The ML.NET context the transformer will belong to.</param>
    /// <param name="stream">The stream, positioned at the model; it is left open, positioned just after the model.</param>
    /// <param name="device">"auto", "cpu", "cuda" or "cuda:N".</param>
    /// <returns>The transformer; dispose it to free native memory.</returns>
    /// <exception cref="InvalidDataException">The stream does not hold a complete, intact Vae.ML model of a supported format version.</exception>
    public static VaeTransformer Load(MLContext mlContext, Stream stream, string device)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(stream);
        VaeModel.CheckDeviceName(device);
        return VaeModelFormat.Read(stream, "The Vae.ML model stream", length: null).Snapshot.ToTransformer(mlContext, device);
    }

    /// <summary>
    /// Reads a transformer written by <see cref="Save(string)"/> or <see cref="ExportSafetensors"/> (or, by an older
    /// Vae.ML, in the ".vae" format) onto the "auto" device (as <see cref="VaeOptions.Device"/> describes it: the <paramref name="mlContext"/>'s GpuDeviceId and FallbackToCpu, else CUDA when available, else CPU).
    /// </summary>
    /// <param name="mlContext">The ML.NET context the transformer will belong to.</param>
    /// <param name="path">The model file.</param>
    /// <returns>The transformer; dispose it to free native memory.</returns>
    /// <exception cref="InvalidDataException">The file is not a complete, intact Vae.ML model of a supported format version; the message names it.</exception>
    public static VaeTransformer Load(MLContext mlContext, string path) => Load(mlContext, path, "auto");

    /// <summary>Reads a transformer written by <see cref="Save(string)"/> or <see cref="ExportSafetensors"/> (or in the older ".vae" format) onto the given device.</summary>
    /// <param name="mlContext">The ML.NET context the transformer will belong to.</param>
    /// <param name="path">The model file.</param>
    /// <param name="device">"auto", "cpu", "cuda" or "cuda:N".</param>
    /// <returns>The transformer; dispose it to free native memory.</returns>
    /// <exception cref="InvalidDataException">The file is not a complete, intact Vae.ML model of a supported format version; the message names it.</exception>
    public static VaeTransformer Load(MLContext mlContext, string path, string device)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        VaeModel.CheckDeviceName(device);
        var fullPath = Path.GetFullPath(path);
        VaeSnapshot snapshot;
        using (var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16))
        {
            snapshot = VaeModelFormat.Read(stream, $"'{fullPath}'", stream.Length).Snapshot;
        }

        return snapshot.ToTransformer(mlContext, device);
    }

    /// <summary>
    /// Writes this transformer for PyTorch: the same file as <see cref="Save(string)"/>, a safetensors file whose
    /// tensors are the weights under the PyTorch original's state_dict names (fc1.weight, fc1.bias, fc21.*, fc22.*,
    /// fc3.*, fc4.*; extra hidden layers fc1_1.*, fc3_1.*, …), float32, with the architecture, β, column names, history
    /// and checksums as <c>__metadata__</c>. <c>model.load_state_dict(safetensors.torch.load_file(path))</c> loads it into
    /// the report's PyTorch VAE. The file is replaced atomically.
    /// </summary>
    /// <param name="path">The file to create or replace, usually ending in ".safetensors".</param>
    /// <exception cref="IOException">Writing failed (a full disk, say); the message names <paramref name="path"/>.</exception>
    public void ExportSafetensors(string path) => Save(path);

    /// <summary>
    /// Builds a transformer from a safetensors file of weights, for example a state_dict trained with the report's
    /// PyTorch VAE. The architecture comes from <paramref name="options"/> (<see cref="VaeOptions.Architecture"/>,
    /// <see cref="VaeOptions.HiddenSizes"/>, <see cref="VaeOptions.LatentDimension"/>, <see cref="VaeOptions.ImageShape"/>,
    /// <see cref="VaeOptions.Likelihood"/>) and
    /// the input size from the image shape, or for an MLP without one from the file's fc1.weight; the file must hold exactly the
    /// tensors of that architecture (F32, or F64/F16/BF16 converted to float32). Column names, β and the device come
    /// from <paramref name="options"/>; of the file's metadata only Vae.ML's checksums are consulted (and verified).
    /// To load a file Vae.ML saved with its own options and history, use <see cref="Load(MLContext, string)"/>.
    /// </summary>
    /// <param name="mlContext">The ML.NET context the transformer will belong to.</param>
    /// <param name="path">The safetensors file.</param>
    /// <param name="options">Architecture, column names, <see cref="VaeOptions.Beta"/> and <see cref="VaeOptions.Device"/>.</param>
    /// <returns>The transformer, with an empty <see cref="History"/>; dispose it to free native memory.</returns>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file, or its tensors do not fit the architecture.</exception>
    public static VaeTransformer ImportSafetensors(MLContext mlContext, string path, VaeOptions options)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(options);
        CheckImportOptions(options);
        ColumnNames.From(options).Check();

        var fullPath = Path.GetFullPath(path);
        VaeSnapshot snapshot;
        using (var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16))
        {
            snapshot = VaeModelFormat.Import(stream, $"'{fullPath}'", stream.Length, options);
        }

        return snapshot.ToTransformer(mlContext, options.Device);
    }

    private static void CheckImportOptions(VaeOptions options)
    {
        VaeNetworkSpec.CheckOptions(options);

        if (!(options.Beta >= 0) || double.IsInfinity(options.Beta))
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.Beta), options.Beta, "Beta must be a finite number ≥ 0.");
        }

        VaeModel.CheckDeviceName(options.Device);
    }
}
