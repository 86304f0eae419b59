using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using Vae.ML.Persistence;
using Vae.ML.Torch;

namespace Vae.ML;

public sealed partial class VaeTransformer
{
    /// <summary>
    /// Writes this transformer (column names, architecture, β, training history and weights) in Vae.ML's versioned,
    /// checksummed model format; see docs/persistence.md. <c>mlContext.Model.Save</c> of a chain holding it stores the same.
    /// </summary>
    /// <param name="stream">Where to write; it is left open.</param>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        VaeModelFile.Write(stream, VaeSnapshot.Of(this));
    }

    /// <summary>
    /// Writes this transformer to a file, atomically: a temporary file in the same directory is renamed over
    /// <paramref name="path"/> only once complete, so a failure leaves any previous file as it was.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    public void Save(string path)
    {
        var snapshot = VaeSnapshot.Of(this);
        AtomicFile.Write(path, stream => VaeModelFile.Write(stream, snapshot));
    }

    /// <summary>Reads a transformer written by <see cref="Save(Stream)"/> onto the "auto" device (CUDA when available, else CPU).</summary>
    /// <param name="mlContext">The ML.NET context the transformer will belong to.</param>
    /// <param name="stream">The stream, positioned at the model; it is left open, positioned just after the model.</param>
    /// <returns>The transformer; dispose it to free native memory.</returns>
    /// <exception cref="InvalidDataException">The stream does not hold a complete, intact Vae.ML model of a supported format version.</exception>
    public static VaeTransformer Load(MLContext mlContext, Stream stream) => Load(mlContext, stream, "auto");

    /// <summary>Reads a transformer written by <see cref="Save(Stream)"/> onto the given device.</summary>
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
        return VaeModelFile.Read(stream, "The Vae.ML model stream").ToTransformer(mlContext, device);
    }

    /// <summary>Reads a transformer written by <see cref="Save(string)"/> onto the "auto" device (CUDA when available, else CPU).</summary>
    /// <param name="mlContext">The ML.NET context the transformer will belong to.</param>
    /// <param name="path">The model file.</param>
    /// <returns>The transformer; dispose it to free native memory.</returns>
    /// <exception cref="InvalidDataException">The file is not a complete, intact Vae.ML model of a supported format version; the message names it.</exception>
    public static VaeTransformer Load(MLContext mlContext, string path) => Load(mlContext, path, "auto");

    /// <summary>Reads a transformer written by <see cref="Save(string)"/> onto the given device.</summary>
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
        var source = $"'{fullPath}'";
        VaeSnapshot snapshot;
        using (var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16))
        {
            snapshot = VaeModelFile.Read(stream, source);
            if (stream.Position != stream.Length)
            {
                throw new InvalidDataException($"{source} is corrupt: {stream.Length - stream.Position} unexpected bytes follow the model's checksum.");
            }
        }

        return snapshot.ToTransformer(mlContext, device);
    }

    /// <summary>
    /// Writes the weights as a safetensors file under the PyTorch original's state_dict names (fc1.weight, fc1.bias,
    /// fc21.*, fc22.*, fc3.*, fc4.*; extra hidden layers fc1_1.*, fc3_1.*, …), float32, with the architecture, β and
    /// column names as <c>__metadata__</c>. <c>model.load_state_dict(safetensors.torch.load_file(path))</c> loads it
    /// into the report's PyTorch VAE. The file is replaced atomically.
    /// </summary>
    /// <param name="path">The file to create or replace, usually ending in ".safetensors".</param>
    public void ExportSafetensors(string path)
    {
        var snapshot = VaeSnapshot.Of(this);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // "pt" is what safetensors.torch writes; some tools look for it.
            ["format"] = "pt",
            ["library"] = VaeModelFile.LibraryDescription,
            ["input_size"] = InputSize.ToString(CultureInfo.InvariantCulture),
            ["hidden_sizes"] = string.Join(",", HiddenSizes.Select(h => h.ToString(CultureInfo.InvariantCulture))),
            ["latent_dimension"] = LatentDimension.ToString(CultureInfo.InvariantCulture),
            ["beta"] = Beta.ToString("R", CultureInfo.InvariantCulture),
            ["feature_column"] = FeatureColumnName,
            ["latent_column"] = LatentColumnName,
            ["latent_log_variance_column"] = LatentLogVarianceColumnName,
            ["reconstruction_column"] = ReconstructionColumnName,
            ["score_column"] = ScoreColumnName,
        };
        AtomicFile.Write(path, stream => Safetensors.Write(stream, snapshot.Parameters, metadata));
    }

    /// <summary>
    /// Builds a transformer from a safetensors file of weights, for example a state_dict trained with the report's
    /// PyTorch VAE. The architecture comes from <paramref name="options"/> (<see cref="VaeOptions.HiddenSizes"/>,
    /// <see cref="VaeOptions.LatentDimension"/>) and the input size from the file; the file must hold exactly the
    /// tensors of that architecture (F32, or F64/F16/BF16 converted to float32). Column names, β and the device come
    /// from <paramref name="options"/>; the file's metadata is not consulted.
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
        var columns = ColumnNames.From(options);
        columns.Check();

        var fullPath = Path.GetFullPath(path);
        var source = $"'{fullPath}'";
        VaeSnapshot snapshot;
        using (var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16))
        {
            var header = Safetensors.ReadHeader(stream, stream.Length, source);
            var entries = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
            var architecture = ArchitectureOf(entries, options, source);
            var expected = VaeParameterLayout.For(architecture);
            var description = $"the VAE {architecture.InputSize}-{string.Join("-", architecture.HiddenSizes)}-{architecture.LatentDimension} of the options";
            var missing = expected.Select(t => t.Name).Where(n => !entries.ContainsKey(n)).ToList();
            var unexpected = entries.Keys.Except(expected.Select(t => t.Name)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
            {
                throw new InvalidDataException(
                    $"{source} does not hold the weights of {description}: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", unexpected)}].");
            }

            foreach (var tensor in expected)
            {
                var entry = entries[tensor.Name];
                if (!entry.Shape.SequenceEqual(tensor.Shape))
                {
                    throw new InvalidDataException(
                        $"{source}: tensor '{tensor.Name}' has shape {TensorShape.Describe(entry.Shape)}; {description} needs {tensor.ShapeText}.");
                }

                if (!Safetensors.IsFloatingPoint(entry.DType))
                {
                    throw new InvalidDataException($"{source}: tensor '{tensor.Name}' has dtype {entry.DType}; expected F32 (or F64, F16, BF16).");
                }
            }

            // Every size is now checked against the architecture and the file's length: reading allocates no more than the file holds.
            var parameters = expected.Select(t => (t.Name, t.Shape, Safetensors.ReadAsFloat32(stream, header, entries[t.Name], source))).ToList();
            snapshot = new VaeSnapshot(columns, architecture, options.Beta, [], parameters);
        }

        return snapshot.ToTransformer(mlContext, options.Device);
    }

    private static VaeArchitecture ArchitectureOf(Dictionary<string, Safetensors.Entry> entries, VaeOptions options, string source)
    {
        if (!entries.TryGetValue("fc1.weight", out var first) || first.Shape.Length != 2 || first.Shape[1] < 1 || first.Shape[1] > int.MaxValue)
        {
            throw new InvalidDataException(
                $"{source} does not hold the weights of a Vae.ML/PyTorch VAE: it needs a 2-D tensor 'fc1.weight' [hidden, input size]; " +
                $"it has [{string.Join(", ", entries.Values.Select(e => $"{e.Name} {TensorShape.Describe(e.Shape)}"))}].");
        }

        var architecture = new VaeArchitecture((int)first.Shape[1], options.HiddenSizes.ToArray(), options.LatentDimension);
        if (VaeParameterLayout.Problem(architecture) is string problem)
        {
            throw new InvalidDataException($"{source}: the weights cannot form a VAE with the given options: {problem}.");
        }

        return architecture;
    }

    private static void CheckImportOptions(VaeOptions options)
    {
        if (options.LatentDimension < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.LatentDimension), options.LatentDimension, "LatentDimension must be at least 1.");
        }

        if (options.HiddenSizes is null || options.HiddenSizes.Length == 0 || options.HiddenSizes.Any(h => h < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.HiddenSizes), "HiddenSizes must hold at least one layer width, each at least 1.");
        }

        if (!(options.Beta >= 0) || double.IsInfinity(options.Beta))
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.Beta), options.Beta, "Beta must be a finite number ≥ 0.");
        }

        VaeModel.CheckDeviceName(options.Device);
    }
}
