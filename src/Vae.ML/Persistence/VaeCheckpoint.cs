using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Vae.ML.Torch;

namespace Vae.ML.Persistence;

/// <summary>
/// What a checkpointed run was trained with. A resume must match all of it except <see cref="Epochs"/>, which may grow:
/// any other difference changes the random draws or the arithmetic, and the resumed run would silently be another run.
/// </summary>
internal sealed record VaeCheckpointRun(
    int InputSize,
    int[] HiddenSizes,
    int LatentDimension,
    int BatchSize,
    double LearningRate,
    double Beta,
    long Seed,
    int Epochs,
    string DeviceType,
    long TrainingRows,
    bool Streamed,
    long ValidationRows,
    VaeLikelihood Likelihood = VaeLikelihood.Bernoulli,
    bool StandardizeFeatures = false)
{
    [JsonIgnore]
    public VaeArchitecture Architecture => new(InputSize, HiddenSizes, LatentDimension, Likelihood);
}

/// <summary>
/// Training checkpoints (docs/reliability.md, "Checkpoints and resume"): a safetensors file with the weights under
/// PyTorch's state_dict names, Adam's moments as <c>optimizer.{name}.exp_avg</c> / <c>optimizer.{name}.exp_avg_sq</c>,
/// the random generators' state as <c>generator.cpu</c> (and <c>generator.device</c> on CUDA; one byte per F32 element),
/// and in <c>__metadata__</c>: format and version, the run's options, the epoch, Adam's step counts, the history and
/// the SHA-256 of all tensor bytes. Reading validates everything and fails with an <see cref="InvalidDataException"/>
/// that names the file.
/// </summary>
internal static class VaeCheckpoint
{
    public const string Format = "vae.ml.checkpoint";

    public const int CurrentVersion = 1;

    private const string OptimizerPrefix = "optimizer.";
    private const string CpuGenerator = "generator.cpu";
    private const string DeviceGenerator = "generator.device";

    /// <summary>libtorch's CPU generator state is 5,056 bytes; a CUDA one is 16. Anything far larger is not a state.</summary>
    private const int MaxGeneratorBytes = 1 << 20;

    private static readonly Regex FileNamePattern = new(@"^checkpoint-epoch-(\d{1,9})\.safetensors$", RegexOptions.CultureInvariant);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        MaxDepth = 8,
    };

    public static string FileName(int epoch) => string.Create(CultureInfo.InvariantCulture, $"checkpoint-epoch-{epoch:D4}.safetensors");

    /// <summary>The checkpoints in <paramref name="directory"/>, oldest epoch first.</summary>
    public static IReadOnlyList<(int Epoch, string Path)> List(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }

        return Directory.EnumerateFiles(directory)
            .Select(path => (Match: FileNamePattern.Match(Path.GetFileName(path)), Path: path))
            .Where(f => f.Match.Success)
            .Select(f => (Epoch: int.Parse(f.Match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture), f.Path))
            .OrderBy(f => f.Epoch)
            .ToList();
    }

    /// <summary>
    /// Writes the checkpoint of <paramref name="state"/> atomically into <paramref name="directory"/>, then deletes older
    /// checkpoints beyond the newest <paramref name="keepLast"/> (null keeps all). Returns the file's path.
    /// </summary>
    public static string Save(string directory, VaeCheckpointRun run, VaeTrainingState state, int? keepLast)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName(state.Epoch));
        AtomicFile.Write(path, stream => Write(stream, run, state));
        if (keepLast is int keep)
        {
            var all = List(directory);
            foreach (var (_, old) in all.Take(Math.Max(0, all.Count - keep)))
            {
                TryDelete(old);
            }
        }

        return path;
    }

    public static void Write(Stream stream, VaeCheckpointRun run, VaeTrainingState state)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var tensors = new List<(string Name, long[] Shape, float[] Values)>(state.Parameters);
        var steps = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var adam in state.Optimizer)
        {
            var shape = state.Parameters.First(p => p.Name == adam.Name).Shape;
            tensors.Add((OptimizerPrefix + adam.Name + ".exp_avg", shape, adam.ExpAvg));
            tensors.Add((OptimizerPrefix + adam.Name + ".exp_avg_sq", shape, adam.ExpAvgSq));
            steps.Add(adam.Name, adam.Step);
        }

        tensors.Add((CpuGenerator, [state.CpuGeneratorState.Length], BytesAsFloats(state.CpuGeneratorState)));
        if (state.DeviceGeneratorState is { } device)
        {
            tensors.Add((DeviceGenerator, [device.Length], BytesAsFloats(device)));
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = Format,
            ["format_version"] = CurrentVersion.ToString(CultureInfo.InvariantCulture),
            ["library"] = $"Vae.ML {typeof(VaeCheckpoint).Assembly.GetName().Version?.ToString(3)}",
            ["options"] = JsonSerializer.Serialize(run, Json),
            ["epoch"] = state.Epoch.ToString(CultureInfo.InvariantCulture),
            ["optimizer"] = JsonSerializer.Serialize(new OptimizerMetadata { Type = "Adam", Steps = steps }, Json),
            ["history"] = JsonSerializer.Serialize(state.History, Json),
            ["sha256"] = Convert.ToHexString(Hash(tensors.Select(t => t.Values))).ToLowerInvariant(),
        };
        Safetensors.Write(stream, tensors, metadata);
    }

    /// <summary>Reads and fully validates a checkpoint file.</summary>
    public static (VaeCheckpointRun Run, VaeTrainingState State) Read(string path)
    {
        var source = $"Checkpoint '{Path.GetFullPath(path)}'";
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{source} does not exist.", path);
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Read(stream, source);
    }

    /// <summary>Reads and fully validates a checkpoint from a seekable stream; <paramref name="source"/> names it in errors.</summary>
    public static (VaeCheckpointRun Run, VaeTrainingState State) Read(Stream stream, string source)
    {
        InvalidDataException Bad(string why) => new($"{source} is not a valid Vae.ML checkpoint: {why}.");

        var header = Safetensors.ReadHeader(stream, stream.Length, source);
        var metadata = header.Metadata;
        string Meta(string key) => metadata.TryGetValue(key, out var value) ? value : throw Bad($"its metadata lacks '{key}'");

        if (Meta("format") != Format)
        {
            throw Bad($"its metadata says format '{metadata["format"]}', not '{Format}' (a model file cannot be resumed from)");
        }

        if (!int.TryParse(Meta("format_version"), NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version < 1 || version > CurrentVersion)
        {
            throw Bad($"it has format version '{metadata["format_version"]}'; this Vae.ML reads versions 1 to {CurrentVersion}");
        }

        var run = Deserialize<VaeCheckpointRun>(Meta("options"), "options", Bad);
        if (run.HiddenSizes is null || VaeParameterLayout.Problem(run.Architecture) is string problem)
        {
            throw Bad($"its options describe no network ({(run.HiddenSizes is null ? "no hidden sizes" : VaeParameterLayout.Problem(run.Architecture))})");
        }

        if (run.BatchSize < 1 || run.Epochs < 1 || run.TrainingRows < 1 || run.ValidationRows < 0
            || !(run.LearningRate > 0) || double.IsInfinity(run.LearningRate) || !(run.Beta >= 0) || double.IsInfinity(run.Beta)
            || run.DeviceType is not ("cpu" or "cuda"))
        {
            throw Bad("its options hold a value outside its domain");
        }

        if (!int.TryParse(Meta("epoch"), NumberStyles.None, CultureInfo.InvariantCulture, out var epoch) || epoch < 1 || epoch > run.Epochs)
        {
            throw Bad($"its epoch '{metadata["epoch"]}' is not between 1 and the run's {run.Epochs} epochs");
        }

        var history = Deserialize<VaeEpochMetrics[]>(Meta("history"), "history", Bad);
        if (history.Length != epoch || history.Select((m, i) => m is null || m.Epoch != i + 1).Any(wrong => wrong))
        {
            throw Bad($"its history does not list epochs 1 to {epoch}");
        }

        var optimizer = Deserialize<OptimizerMetadata>(Meta("optimizer"), "optimizer", Bad);
        if (optimizer.Type != "Adam" || optimizer.Steps is null)
        {
            throw Bad("its optimizer metadata does not describe Adam's step counts");
        }

        // Exactly the expected tensors, with the expected shapes, all F32; nothing missing, nothing extra.
        var layout = VaeParameterLayout.For(run.Architecture);
        var expected = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var tensor in layout)
        {
            expected.Add(tensor.Name, tensor.Shape);
            if (GaussianDecoder.IsStandardization(tensor.Name))
            {
                continue;
            }

            expected.Add(OptimizerPrefix + tensor.Name + ".exp_avg", tensor.Shape);
            expected.Add(OptimizerPrefix + tensor.Name + ".exp_avg_sq", tensor.Shape);
        }

        var entries = header.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var generators = new[] { CpuGenerator, DeviceGenerator }.Where(entries.ContainsKey).ToList();
        var missing = expected.Keys.Where(name => !entries.ContainsKey(name)).ToList();
        if (!entries.ContainsKey(CpuGenerator))
        {
            missing.Add(CpuGenerator);
        }

        if (run.DeviceType != "cpu" && !entries.ContainsKey(DeviceGenerator))
        {
            missing.Add(DeviceGenerator);
        }

        var extra = entries.Keys.Where(name => !expected.ContainsKey(name) && !generators.Contains(name)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
        {
            throw Bad($"its tensors do not match its options: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", extra)}]");
        }

        foreach (var entry in header.Entries)
        {
            if (entry.DType != "F32")
            {
                throw Bad($"tensor '{entry.Name}' is {entry.DType}; checkpoints hold F32 only");
            }

            var shape = expected.TryGetValue(entry.Name, out var s) ? s : null;
            if (shape is null ? entry.Shape.Length != 1 || entry.Shape[0] < 1 || entry.Shape[0] > MaxGeneratorBytes : !shape.SequenceEqual(entry.Shape))
            {
                throw Bad($"tensor '{entry.Name}' has shape {TensorShape.Describe(entry.Shape)}, expected {(shape is null ? "one dimension of generator state" : TensorShape.Describe(shape))}");
            }
        }

        var steps = new Dictionary<string, long>(StringComparer.Ordinal);
        var trained = layout.Where(t => !GaussianDecoder.IsStandardization(t.Name)).ToList();
        foreach (var tensor in trained)
        {
            if (!optimizer.Steps.TryGetValue(tensor.Name, out var step) || step < 0)
            {
                throw Bad($"its optimizer metadata has no valid step count for '{tensor.Name}'");
            }

            steps.Add(tensor.Name, step);
        }

        // Read in file order, so the hash sees the bytes as they lie on disk.
        var values = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var entry in header.Entries.OrderBy(e => e.Begin))
        {
            values.Add(entry.Name, Safetensors.ReadAsFloat32(stream, header, entry, source));
        }

        var hash = Hash(header.Entries.OrderBy(e => e.Begin).Select(e => values[e.Name]));
        if (!CryptographicOperations.FixedTimeEquals(hash, ParseHex(Meta("sha256"), Bad)))
        {
            throw new InvalidDataException($"{source} is corrupt: the SHA-256 of its tensors does not match the one in its metadata.");
        }

        var state = new VaeTrainingState(
            epoch,
            history,
            layout.Select(t => (t.Name, t.Shape, values[t.Name])).ToList(),
            trained.Select(t => new AdamParameterState(t.Name, steps[t.Name],
                values[OptimizerPrefix + t.Name + ".exp_avg"], values[OptimizerPrefix + t.Name + ".exp_avg_sq"])).ToList(),
            FloatsAsBytes(values[CpuGenerator], CpuGenerator, Bad),
            values.TryGetValue(DeviceGenerator, out var device) ? FloatsAsBytes(device, DeviceGenerator, Bad) : null);
        return (run, state);
    }

    /// <summary>
    /// Throws an <see cref="ArgumentException"/> naming the option when the current run is not the checkpointed one.
    /// </summary>
    public static void CheckResumable(VaeCheckpointRun saved, int savedEpoch, VaeCheckpointRun current, string path)
    {
        void Differs(string option, object? had, object? now)
            => throw new ArgumentException(
                $"{nameof(VaeOptions.ResumeFrom)} '{path}' was trained with {option} {had}, but this run has {now}. Resume with the same " +
                "options and data as the checkpointed run (only Epochs may grow), or start a new run without ResumeFrom.",
                option);

        string Sizes(int inputSize, int[] hidden, int latent) => $"{inputSize}-{string.Join("-", hidden)}-{latent}";

        if (saved.InputSize != current.InputSize || !saved.HiddenSizes.SequenceEqual(current.HiddenSizes) || saved.LatentDimension != current.LatentDimension)
        {
            Differs("the architecture (input-hidden-latent)", Sizes(saved.InputSize, saved.HiddenSizes, saved.LatentDimension),
                Sizes(current.InputSize, current.HiddenSizes, current.LatentDimension));
        }

        if (saved.Likelihood != current.Likelihood)
        {
            Differs(nameof(VaeOptions.Likelihood), saved.Likelihood, current.Likelihood);
        }

        if (saved.StandardizeFeatures != current.StandardizeFeatures)
        {
            Differs(nameof(VaeOptions.StandardizeFeatures), saved.StandardizeFeatures, current.StandardizeFeatures);
        }

        if (saved.BatchSize != current.BatchSize)
        {
            Differs(nameof(VaeOptions.BatchSize), saved.BatchSize, current.BatchSize);
        }

        // Exact comparisons on purpose: a learning rate that differs in the last bit is a different run.
        if (!saved.LearningRate.Equals(current.LearningRate))
        {
            Differs(nameof(VaeOptions.LearningRate), saved.LearningRate.ToString("R", CultureInfo.InvariantCulture), current.LearningRate.ToString("R", CultureInfo.InvariantCulture));
        }

        if (!saved.Beta.Equals(current.Beta))
        {
            Differs(nameof(VaeOptions.Beta), saved.Beta.ToString("R", CultureInfo.InvariantCulture), current.Beta.ToString("R", CultureInfo.InvariantCulture));
        }

        if (saved.Seed != current.Seed)
        {
            Differs(nameof(VaeOptions.Seed), saved.Seed, current.Seed);
        }

        if (saved.DeviceType != current.DeviceType)
        {
            Differs(nameof(VaeOptions.Device), saved.DeviceType, current.DeviceType);
        }

        if (saved.TrainingRows != current.TrainingRows)
        {
            Differs("training data rows", saved.TrainingRows, current.TrainingRows);
        }

        if (saved.Streamed != current.Streamed)
        {
            Differs(nameof(VaeOptions.MaxInMemoryBytes), saved.Streamed ? "streamed training data" : "training data held in memory",
                current.Streamed ? "streamed data" : "data held in memory");
        }

        if (saved.ValidationRows != current.ValidationRows)
        {
            Differs(nameof(VaeOptions.ValidationData) + " rows", saved.ValidationRows, current.ValidationRows);
        }

        if (savedEpoch > current.Epochs)
        {
            Differs(nameof(VaeOptions.Epochs) + " (at least the checkpoint's epoch)", savedEpoch, current.Epochs);
        }
    }

    /// <summary>Pruning is housekeeping: an old checkpoint that cannot be deleted now must not stop the training.</summary>
    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static T Deserialize<T>(string json, string what, Func<string, InvalidDataException> bad)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Json) ?? throw bad($"its '{what}' metadata is null");
        }
        catch (JsonException e)
        {
            throw bad($"its '{what}' metadata is not valid JSON ({e.Message})");
        }
    }

    /// <summary>SHA-256 of the arrays' little-endian bytes, in order: what the file's data section holds.</summary>
    private static byte[] Hash(IEnumerable<float[]> arrays)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = BitConverter.IsLittleEndian ? null : new byte[4096 * sizeof(float)];
        foreach (var values in arrays)
        {
            if (buffer is null)
            {
                hash.AppendData(MemoryMarshal.AsBytes(values.AsSpan()));
                continue;
            }

            for (var i = 0; i < values.Length; i += 4096)
            {
                var n = Math.Min(4096, values.Length - i);
                for (var j = 0; j < n; j++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(j * sizeof(float)), values[i + j]);
                }

                hash.AppendData(buffer, 0, n * sizeof(float));
            }
        }

        return hash.GetHashAndReset();
    }

    private static byte[] ParseHex(string text, Func<string, InvalidDataException> bad)
    {
        try
        {
            var bytes = Convert.FromHexString(text);
            return bytes.Length == SHA256.HashSizeInBytes ? bytes : throw bad("its 'sha256' metadata is not 32 bytes of hexadecimal");
        }
        catch (FormatException)
        {
            throw bad("its 'sha256' metadata is not hexadecimal");
        }
    }

    private static float[] BytesAsFloats(byte[] bytes) => Array.ConvertAll(bytes, b => (float)b);

    private static byte[] FloatsAsBytes(float[] values, string name, Func<string, InvalidDataException> bad)
    {
        var bytes = new byte[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var v = values[i];
            if (!(v >= 0 && v <= 255) || v != MathF.Floor(v))
            {
                throw bad($"tensor '{name}' holds {v.ToString(CultureInfo.InvariantCulture)} at {i}; generator state is bytes 0..255");
            }

            bytes[i] = (byte)v;
        }

        return bytes;
    }

    private sealed class OptimizerMetadata
    {
        public string? Type { get; set; }

        public Dictionary<string, long>? Steps { get; set; }
    }
}
