using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Vae.ML.Torch;

namespace Vae.ML.Persistence;

/// <summary>
/// Vae.ML's one file format (docs/persistence.md, format version 3): a safetensors file whose tensors are the network's
/// float32 weights under the PyTorch original's names, and whose <c>__metadata__</c> carries the format version, the
/// library, the architecture, β, the column names, the training history and two SHA-256 sums (of the tensor bytes and
/// of the other metadata). <see cref="VaeTransformer.Save(string)"/>, <see cref="VaeTransformer.ExportSafetensors"/>,
/// the ML.NET zip entry and checkpoints all write it with <see cref="Write"/>; every loader reads it with
/// <see cref="Read"/> (which also reads the version-1 ".vae" files) or <see cref="Import"/> (plain PyTorch weights).
/// </summary>
internal static class VaeModelFormat
{
    /// <summary>
    /// Version 1 was the binary ".vae" file (<see cref="LegacyVaeModelFile"/>); 2 is this safetensors layout for MLPs;
    /// 3 adds <see cref="Keys.Architecture"/> (required) and <see cref="Keys.ImageShape"/> (when set); 4 adds
    /// <see cref="Keys.Likelihood"/> (required; and, for the Gaussian one, the decoder_log_var and standardization
    /// tensors). Versions 2 and 3 are read as Bernoulli models.
    /// </summary>
    public const int CurrentVersion = 4;

    /// <summary>The first version that records the likelihood.</summary>
    private const int FirstLikelihoodVersion = 4;

    /// <summary>The first safetensors version; its files are MLPs without an image shape.</summary>
    private const int FirstSafetensorsVersion = 2;

    /// <summary>The metadata keys this format owns; a caller's extra metadata must use other names.</summary>
    public static class Keys
    {
        public const string Format = "format";
        public const string FormatVersion = "vae_ml_format_version";
        public const string Library = "library";
        public const string Architecture = "architecture";
        public const string ImageShape = "image_shape";
        public const string InputSize = "input_size";
        public const string HiddenSizes = "hidden_sizes";
        public const string LatentDimension = "latent_dimension";
        public const string Beta = "beta";
        public const string Likelihood = "likelihood";
        public const string FeatureColumn = "feature_column";
        public const string LatentColumn = "latent_column";
        public const string LatentLogVarianceColumn = "latent_log_variance_column";
        public const string ReconstructionColumn = "reconstruction_column";
        public const string ScoreColumn = "score_column";
        public const string History = "history";
        public const string TensorsSha256 = "tensors_sha256";
        public const string HeaderSha256 = "header_sha256";

        public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal)
        {
            Format, FormatVersion, Library, Architecture, ImageShape, InputSize, HiddenSizes, LatentDimension, Beta, Likelihood, FeatureColumn, LatentColumn,
            LatentLogVarianceColumn, ReconstructionColumn, ScoreColumn, History, TensorsSha256, HeaderSha256,
        };
    }

    /// <summary>JSON of the training history (and of the version-1 header): NaN losses of a diverged run survive.</summary>
    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        MaxDepth = 8,
    };

    internal static string LibraryDescription => $"Vae.ML {typeof(VaeModelFormat).Assembly.GetName().Version?.ToString(3)}";

    /// <summary>
    /// Writes <paramref name="snapshot"/>, plus a caller's extra tensors (e.g. a checkpoint's "optimizer.*") and extra
    /// metadata, both covered by the checksums. Everything is checked before the first byte is written.
    /// </summary>
    public static void Write(Stream stream, VaeSnapshot snapshot, VaeFileExtras? extras = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var layout = snapshot.Architecture.Layout;
        if (layout.Count != snapshot.Parameters.Count
            || layout.Zip(snapshot.Parameters).Any(p => p.First.Name != p.Second.Name || !p.First.Shape.SequenceEqual(p.Second.Shape)
                || p.Second.Values.Length != p.First.ElementCount))
        {
            throw new InvalidOperationException("The network's parameters do not match its architecture; nothing was written.");
        }

        var tensors = snapshot.Parameters.Select(p => Safetensors.RawTensor.Float32(p.Name, p.Shape, p.Values)).ToList();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // "pt" is what safetensors.torch writes; some tools look for it.
            [Keys.Format] = "pt",
            [Keys.FormatVersion] = CurrentVersion.ToString(CultureInfo.InvariantCulture),
            [Keys.Library] = LibraryDescription,
            [Keys.Architecture] = ArchitectureNames[snapshot.Architecture.Kind],
            [Keys.InputSize] = snapshot.Architecture.InputSize.ToString(CultureInfo.InvariantCulture),
            [Keys.HiddenSizes] = VaeNetworkSpec.FormatSizes(snapshot.Architecture.HiddenSizes),
            [Keys.LatentDimension] = snapshot.Architecture.LatentDimension.ToString(CultureInfo.InvariantCulture),
            [Keys.Beta] = snapshot.Beta.ToString("R", CultureInfo.InvariantCulture),
            [Keys.Likelihood] = LikelihoodName(snapshot.Architecture.Likelihood),
            [Keys.FeatureColumn] = snapshot.Columns.Feature,
            [Keys.LatentColumn] = snapshot.Columns.Latent,
            [Keys.LatentLogVarianceColumn] = snapshot.Columns.LatentLogVariance,
            [Keys.ReconstructionColumn] = snapshot.Columns.Reconstruction,
            [Keys.ScoreColumn] = snapshot.Columns.Score,
            [Keys.History] = JsonSerializer.Serialize(snapshot.History, Json),
        };
        if (snapshot.Architecture.ImageShape is { } imageShape)
        {
            metadata[Keys.ImageShape] = VaeNetworkSpec.FormatSizes(imageShape);
        }

        if (extras is not null)
        {
            foreach (var (key, value) in extras.Metadata)
            {
                if (Keys.All.Contains(key) || key == Safetensors.MetadataKey)
                {
                    throw new ArgumentException($"Extra metadata '{key}' would replace one of the format's own entries.", nameof(extras));
                }

                metadata.Add(key, value);
            }

            tensors.AddRange(extras.Tensors);
        }

        metadata[Keys.TensorsSha256] = Safetensors.DataSha256(tensors);
        metadata[Keys.HeaderSha256] = HeaderSha256(metadata, tensors);
        Safetensors.Write(stream, tensors, metadata);
    }

    /// <summary>
    /// Reads and fully validates a model: a version-2 safetensors file with Vae.ML metadata or a version-1 ".vae" file.
    /// <paramref name="length"/> is the byte count when known (a file: then nothing may follow the model), else null (a
    /// stream: then it is left just after the model). Tensors other than the network's are refused unless their names
    /// start with one of <paramref name="extraTensorPrefixes"/> (a checkpoint reader passes "optimizer.", "generator.").
    /// </summary>
    /// <exception cref="InvalidDataException">Anything about the bytes is wrong; the message starts with <paramref name="source"/>.</exception>
    public static VaeFile Read(Stream stream, string source, long? length, IReadOnlyCollection<string>? extraTensorPrefixes = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var prefixes = extraTensorPrefixes ?? [];
        var start = new byte[8];
        var reader = new ExactReader(stream, source);
        var got = reader.ReadUpTo(start);
        if (got < start.Length)
        {
            throw new InvalidDataException($"{source} is not a Vae.ML model: it holds only {got} bytes.");
        }

        if (start.AsSpan().SequenceEqual(LegacyVaeModelFile.Magic))
        {
            var legacy = LegacyVaeModelFile.ReadAfterMagic(stream, start, source);
            if (length is not null && stream.ReadByte() >= 0)
            {
                throw new InvalidDataException($"{source} is corrupt: unexpected bytes follow the model's checksum.");
            }

            return new VaeFile(legacy, new Dictionary<string, string>(), new Dictionary<string, Safetensors.RawTensor>(), (int)LegacyVaeModelFile.CurrentVersion);
        }

        VaeSnapshot? skeleton = null;
        int version = 0;
        var contents = Safetensors.ReadAfterLength(stream, BinaryPrimitives.ReadUInt64LittleEndian(start), length, source, header =>
        {
            version = CheckVersionAndHeader(header, source);
            skeleton = ParseMetadata(header.Metadata, version, source);
            var expected = skeleton.Architecture.Layout;
            var entries = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
            var extras = entries.Keys.Except(expected.Select(t => t.Name)).ToList();
            var missing = expected.Where(t => !entries.ContainsKey(t.Name)).Select(t => t.Name).ToList();
            var refused = extras.Where(name => !prefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))).ToList();
            if (missing.Count == 0 && refused.Count > 0)
            {
                throw new InvalidDataException(
                    $"{source} holds tensors besides the network's: [{string.Join(", ", refused)}]. A training checkpoint is not a model file.");
            }

            if (missing.Count > 0)
            {
                throw new InvalidDataException(
                    $"{source} is corrupt: its tensors do not match its architecture {skeleton.Architecture.Describe()}: " +
                    $"missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", refused)}].");
            }

            foreach (var tensor in expected)
            {
                var entry = entries[tensor.Name];
                if (entry.DType != "F32" || !entry.Shape.SequenceEqual(tensor.Shape))
                {
                    throw new InvalidDataException(
                        $"{source} is corrupt: tensor '{tensor.Name}' is {entry.DType} {TensorShape.Describe(entry.Shape)}; its architecture needs F32 {tensor.ShapeText}.");
                }
            }
        });
        CheckTensorsSha256(contents, source, required: true);

        var byName = contents.Header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var parameters = skeleton!.Parameters
            .Select(p => (p.Name, p.Shape, Safetensors.ToFloat32(byName[p.Name], contents.Data[p.Name])))
            .ToList();
        var extraTensors = contents.Header.Entries
            .Where(e => !parameters.Any(p => p.Name == e.Name))
            .ToDictionary(e => e.Name, e => new Safetensors.RawTensor(e.Name, e.DType, e.Shape, contents.Data[e.Name]), StringComparer.Ordinal);
        var extraMetadata = contents.Header.Metadata.Where(m => !Keys.All.Contains(m.Key)).ToDictionary(m => m.Key, m => m.Value, StringComparer.Ordinal);
        return new VaeFile(skeleton with { Parameters = parameters }, extraMetadata, extraTensors, version);
    }

    /// <summary>
    /// Reads a plain safetensors file of weights (from PyTorch, or from Vae.ML) for the architecture of
    /// <paramref name="options"/>, the input size taken from fc1.weight; column names and β come from the options.
    /// Checksums the file carries are verified; its other metadata is not consulted.
    /// </summary>
    public static VaeSnapshot Import(Stream stream, string source, long? length, VaeOptions options)
    {
        var columns = VaeTransformer.ColumnNames.From(options);
        VaeNetworkSpec? architecture = null;
        var contents = Safetensors.Read(stream, length, source, header =>
        {
            if (header.Metadata.TryGetValue(Keys.HeaderSha256, out var stored) && stored != HeaderSha256(header))
            {
                throw new InvalidDataException($"{source} is corrupt: its header does not match its {Keys.HeaderSha256}.");
            }

            var entries = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
            architecture = ImportedArchitecture(entries, options, source);
            var expected = architecture.Layout;
            var description = $"the VAE {architecture.Describe()} of the options";
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
        });
        CheckTensorsSha256(contents, source, required: false);
        var byName = contents.Header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var parameters = architecture!.Layout
            .Select(t => (t.Name, t.Shape, Safetensors.ToFloat32(byName[t.Name], contents.Data[t.Name])))
            .ToList();
        return new VaeSnapshot(columns, architecture!, options.Beta, [], parameters);
    }

    /// <summary>
    /// SHA-256, as lowercase hex, of the whole header but <c>header_sha256</c> itself, so that no change to a name, shape,
    /// dtype, offset or metadata value goes unnoticed: the number of metadata entries, then each entry in ordinal key
    /// order as key and value; the number of tensors, then for each tensor in data order its name, dtype, shape
    /// ("400,784") and offsets ("0,1254400"). Every item is written as a 4-byte little-endian UTF-8 byte count followed
    /// by the bytes, so the encoding is unambiguous whatever the strings hold.
    /// </summary>
    public static string HeaderSha256(IReadOnlyDictionary<string, string> metadata, IEnumerable<Safetensors.RawTensor> tensors)
    {
        long offset = 0;
        var entries = new List<Safetensors.Entry>();
        foreach (var tensor in tensors)
        {
            entries.Add(new Safetensors.Entry(tensor.Name, tensor.DType, tensor.Shape, offset, offset + tensor.Data.Length));
            offset += tensor.Data.Length;
        }

        return HeaderSha256(metadata, entries);
    }

    /// <summary><see cref="HeaderSha256(IReadOnlyDictionary{string, string}, IEnumerable{Safetensors.RawTensor})"/> of a file's header.</summary>
    public static string HeaderSha256(Safetensors.Header header) => HeaderSha256(header.Metadata, header.Entries);

    private static string HeaderSha256(IReadOnlyDictionary<string, string> metadata, IEnumerable<Safetensors.Entry> entries)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var count = new byte[4];
        void Append(string text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            BinaryPrimitives.WriteInt32LittleEndian(count, bytes.Length);
            hash.AppendData(count);
            hash.AppendData(bytes);
        }

        var items = metadata.Where(m => m.Key != Keys.HeaderSha256).OrderBy(m => m.Key, StringComparer.Ordinal).ToList();
        Append(items.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var (key, value) in items)
        {
            Append(key);
            Append(value);
        }

        var tensors = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        Append(tensors.Count.ToString(CultureInfo.InvariantCulture));
        foreach (var entry in tensors)
        {
            Append(entry.Name);
            Append(entry.DType);
            Append(string.Join(",", entry.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))));
            Append(string.Create(CultureInfo.InvariantCulture, $"{entry.Begin},{entry.End}"));
        }

        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }

    private static string LikelihoodName(VaeLikelihood likelihood) => likelihood == VaeLikelihood.Gaussian ? "gaussian" : "bernoulli";

    private static VaeLikelihood? ParseLikelihood(string text) => text switch
    {
        "bernoulli" => VaeLikelihood.Bernoulli,
        "gaussian" => VaeLikelihood.Gaussian,
        _ => null,
    };

    /// <summary>The version check comes first (a newer file deserves "upgrade", not "corrupt"), then the header checksum.</summary>
    private static int CheckVersionAndHeader(Safetensors.Header header, string source)
    {
        var metadata = header.Metadata;
        if (!metadata.TryGetValue(Keys.FormatVersion, out var text))
        {
            throw new InvalidDataException(
                $"{source} is a safetensors file without Vae.ML's metadata ('{Keys.FormatVersion}' is missing). " +
                "Plain weights (e.g. from PyTorch) load with VaeTransformer.ImportSafetensors(mlContext, path, options).");
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version < FirstSafetensorsVersion)
        {
            throw new InvalidDataException($"{source} is corrupt: '{Keys.FormatVersion}' is '{text}'.");
        }

        if (version > CurrentVersion)
        {
            throw new InvalidDataException(
                $"{source} uses Vae.ML model format version {version}; this Vae.ML ({LibraryDescription}) reads versions 1 to {CurrentVersion}. " +
                "Load it with a newer Vae.ML.");
        }

        if (!metadata.TryGetValue(Keys.HeaderSha256, out var stored) || stored != HeaderSha256(header))
        {
            throw new InvalidDataException($"{source} is corrupt: its header does not match its {Keys.HeaderSha256}.");
        }

        return version;
    }

    private static void CheckTensorsSha256(Safetensors.Contents contents, string source, bool required)
    {
        if (contents.Header.Metadata.TryGetValue(Keys.TensorsSha256, out var stored))
        {
            if (stored != contents.DataSha256)
            {
                throw new InvalidDataException($"{source} is corrupt: the SHA-256 of its tensor bytes does not match its {Keys.TensorsSha256}.");
            }
        }
        else if (required)
        {
            throw new InvalidDataException($"{source} is corrupt: its metadata has no {Keys.TensorsSha256}.");
        }
    }

    /// <summary>Column names, architecture, β and history from checked metadata; the parameters are empty placeholders of the layout.</summary>
    private static VaeSnapshot ParseMetadata(IReadOnlyDictionary<string, string> metadata, int version, string source)
    {
        InvalidDataException Bad(string why) => new($"{source} is corrupt: {why}.");
        string Get(string key) => metadata.TryGetValue(key, out var value) ? value : throw Bad($"its metadata lacks '{key}'");
        int Int(string key, string text) => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw Bad($"'{key}' is '{text}', not a whole number");

        // Versions before 4 predate the Gaussian likelihood: their models are all Bernoulli.
        var likelihoodText = version < FirstLikelihoodVersion ? LikelihoodName(VaeLikelihood.Bernoulli) : Get(Keys.Likelihood);
        var likelihood = ParseLikelihood(likelihoodText) ?? throw Bad($"'{Keys.Likelihood}' is '{likelihoodText}', not \"bernoulli\" or \"gaussian\"");

        // Version 2 predates the architecture entries: its files are MLPs.
        var kind = version == FirstSafetensorsVersion ? VaeArchitecture.Mlp : ParseArchitecture(Get(Keys.Architecture)) ?? throw Bad(
            $"'{Keys.Architecture}' is '{metadata[Keys.Architecture]}', not one of {string.Join(", ", ArchitectureNames.Values)}");
        int[]? imageShape = version > FirstSafetensorsVersion && metadata.TryGetValue(Keys.ImageShape, out var shapeText)
            ? shapeText.Split(',').Select(s => Int(Keys.ImageShape, s)).ToArray()
            : null;
        var architecture = new VaeNetworkSpec(
            kind,
            Int(Keys.InputSize, Get(Keys.InputSize)),
            Get(Keys.HiddenSizes).Split(',').Select(h => Int(Keys.HiddenSizes, h)).ToArray(),
            Int(Keys.LatentDimension, Get(Keys.LatentDimension)),
            imageShape,
            likelihood);
        if (architecture.Problem() is string problem)
        {
            throw Bad(problem);
        }

        var betaText = Get(Keys.Beta);
        if (!double.TryParse(betaText, NumberStyles.Float, CultureInfo.InvariantCulture, out var beta) || !(beta >= 0) || double.IsInfinity(beta))
        {
            throw Bad($"beta '{betaText}' is not a finite number ≥ 0");
        }

        var columns = new VaeTransformer.ColumnNames(
            Get(Keys.FeatureColumn), Get(Keys.LatentColumn), Get(Keys.LatentLogVarianceColumn), Get(Keys.ReconstructionColumn), Get(Keys.ScoreColumn));
        try
        {
            columns.Check();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{source} is corrupt: {e.Message}", e);
        }

        VaeEpochMetrics[]? history;
        try
        {
            history = JsonSerializer.Deserialize<VaeEpochMetrics[]>(Get(Keys.History), Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source} is corrupt: its training history cannot be read ({e.Message}).", e);
        }

        if (history is null || history.Any(h => h is null))
        {
            throw Bad("its training history is not a list of epochs");
        }

        var placeholders = architecture.Layout.Select(t => (t.Name, t.Shape, Array.Empty<float>())).ToList();
        return new VaeSnapshot(columns, architecture, beta, history, placeholders);
    }

    /// <summary>How <see cref="Keys.Architecture"/> spells each kind.</summary>
    private static readonly IReadOnlyDictionary<VaeArchitecture, string> ArchitectureNames = new Dictionary<VaeArchitecture, string>
    {
        [VaeArchitecture.Mlp] = "mlp",
        [VaeArchitecture.Convolutional] = "convolutional",
    };

    private static VaeArchitecture? ParseArchitecture(string text)
        => ArchitectureNames.Where(n => n.Value == text).Select(n => (VaeArchitecture?)n.Key).FirstOrDefault();

    /// <summary>
    /// The options' architecture; the input size is the image shape's product when there is one, else (an MLP)
    /// fc1.weight's width.
    /// </summary>
    private static VaeNetworkSpec ImportedArchitecture(Dictionary<string, Safetensors.Entry> entries, VaeOptions options, string source)
    {
        if (options.ImageShape is { } imageShape)
        {
            var fromShape = new VaeNetworkSpec(options.Architecture, (int)Math.Clamp(imageShape.Aggregate(1L, (a, b) => a * b), 0, int.MaxValue),
                options.HiddenSizes.ToArray(), options.LatentDimension, imageShape.ToArray(), options.Likelihood);
            if (fromShape.Problem() is string shapeProblem)
            {
                throw new InvalidDataException($"{source}: the weights cannot form a VAE with the given options: {shapeProblem}.");
            }

            return fromShape;
        }

        if (!entries.TryGetValue("fc1.weight", out var first) || first.Shape.Length != 2 || first.Shape[1] < 1 || first.Shape[1] > int.MaxValue)
        {
            throw new InvalidDataException(
                $"{source} does not hold the weights of a Vae.ML/PyTorch VAE: it needs a 2-D tensor 'fc1.weight' [hidden, input size]; " +
                $"it has [{string.Join(", ", entries.Values.Select(e => $"{e.Name} {TensorShape.Describe(e.Shape)}"))}].");
        }

        var architecture = new VaeNetworkSpec(options.Architecture, (int)first.Shape[1], options.HiddenSizes.ToArray(), options.LatentDimension, null, options.Likelihood);
        if (architecture.Problem() is string problem)
        {
            throw new InvalidDataException($"{source}: the weights cannot form a VAE with the given options: {problem}.");
        }

        return architecture;
    }
}

/// <summary>What a caller adds to a model file: a checkpoint's optimizer and generator state, say.</summary>
/// <param name="Metadata">Extra <c>__metadata__</c> entries; names must differ from <see cref="VaeModelFormat.Keys.All"/>.</param>
/// <param name="Tensors">Extra tensors, written after the network's; their names must not be the network's.</param>
internal sealed record VaeFileExtras(IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<Safetensors.RawTensor> Tensors);

/// <summary>A model read by <see cref="VaeModelFormat.Read"/>, with whatever extras the caller asked for.</summary>
/// <param name="Snapshot">The model.</param>
/// <param name="Metadata">Metadata entries that are not the format's own (<see cref="VaeModelFormat.Keys.All"/>).</param>
/// <param name="Tensors">Tensors that are not the network's, by name; only names with a requested prefix get here.</param>
/// <param name="FormatVersion">1 for a ".vae" file, 2 to 4 for safetensors (3 records the architecture kind, 4 the likelihood).</param>
internal sealed record VaeFile(
    VaeSnapshot Snapshot,
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyDictionary<string, Safetensors.RawTensor> Tensors,
    int FormatVersion);
