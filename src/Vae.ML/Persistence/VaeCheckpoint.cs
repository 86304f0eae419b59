using System.Buffers.Binary;
using System.Globalization;
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
    [property: JsonConverter(typeof(JsonStringEnumConverter<VaeArchitecture>))] VaeArchitecture Architecture = VaeArchitecture.Mlp,
    int[]? ImageShape = null,
    VaeLikelihood Likelihood = VaeLikelihood.Bernoulli,
    bool StandardizeFeatures = false,
    int KlWarmupEpochs = 0,
    int? EarlyStoppingPatience = null)
{
    /// <summary>The network; options written before <see cref="VaeOptions.Architecture"/> existed describe MLPs without an image shape.</summary>
    [JsonIgnore]
    public VaeNetworkSpec Network => new(Architecture, InputSize, HiddenSizes, LatentDimension, ImageShape, Likelihood);
}

/// <summary>
/// Training checkpoints (docs/reliability.md, "Checkpoints and resume"): Vae.ML's model file (<see cref="VaeModelFormat"/>:
/// the weights under PyTorch's state_dict names, architecture, β, columns, history, SHA-256 sums) plus, as extra
/// entries, Adam's state per parameter (<c>optimizer.{name}.exp_avg</c>, <c>.exp_avg_sq</c> F32 and <c>.step</c> I64),
/// the random generators' state (<c>generator.cpu</c>, and <c>generator.device</c> on CUDA, U8 as
/// <c>torch.get_rng_state()</c> returns it) and the metadata <c>checkpoint_version</c>, <c>training_options</c> and
/// <c>epoch</c>. Reading goes through the format's one reader and then checks the extras; every problem is an
/// <see cref="InvalidDataException"/> naming the file.
/// </summary>
internal static class VaeCheckpoint
{
    public const int CurrentVersion = 1;

    private const string VersionKey = "checkpoint_version";
    private const string OptionsKey = "training_options";
    private const string EpochKey = "epoch";
    private const string CpuGenerator = "generator.cpu";
    private const string DeviceGenerator = "generator.device";
    private const string BestPrefix = "best.";
    private static readonly string[] ExtraPrefixes = ["optimizer.", "generator.", BestPrefix];

    /// <summary>libtorch's CPU generator state is 5,056 bytes; a CUDA one is 16. Anything far larger is not a state.</summary>
    private const int MaxGeneratorBytes = 1 << 20;

    private static readonly Regex FileNamePattern = new(@"^checkpoint-epoch-(\d{1,9})\.safetensors$", RegexOptions.CultureInvariant);

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, MaxDepth = 4 };

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
    public static string Save(string directory, VaeCheckpointRun run, VaeTransformer.ColumnNames columns, VaeTrainingState state, int? keepLast)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName(state.Epoch));
        AtomicFile.Write(path, stream => Write(stream, run, columns, state));
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

    public static void Write(Stream stream, VaeCheckpointRun run, VaeTransformer.ColumnNames columns, VaeTrainingState state)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var snapshot = new VaeSnapshot(columns, run.Network, run.Beta, state.History, state.Parameters);
        var tensors = new List<Safetensors.RawTensor>();
        foreach (var adam in state.Optimizer)
        {
            var shape = state.Parameters.First(p => p.Name == adam.Name).Shape;
            tensors.Add(Safetensors.RawTensor.Float32(OptimizerName(adam.Name, "exp_avg"), shape, adam.ExpAvg));
            tensors.Add(Safetensors.RawTensor.Float32(OptimizerName(adam.Name, "exp_avg_sq"), shape, adam.ExpAvgSq));
            var step = new byte[sizeof(long)];
            BinaryPrimitives.WriteInt64LittleEndian(step, adam.Step);
            tensors.Add(new Safetensors.RawTensor(OptimizerName(adam.Name, "step"), "I64", [], step));
        }

        // Early stopping's best weights so far, under the weights' names with a prefix.
        foreach (var (name, shape, values) in state.BestParameters ?? [])
        {
            tensors.Add(Safetensors.RawTensor.Float32(BestPrefix + name, shape, values));
        }

        tensors.Add(new Safetensors.RawTensor(CpuGenerator, "U8", [state.CpuGeneratorState.Length], state.CpuGeneratorState));
        if (state.DeviceGeneratorState is { } device)
        {
            tensors.Add(new Safetensors.RawTensor(DeviceGenerator, "U8", [device.Length], device));
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [VersionKey] = CurrentVersion.ToString(CultureInfo.InvariantCulture),
            [OptionsKey] = JsonSerializer.Serialize(run, Json),
            [EpochKey] = state.Epoch.ToString(CultureInfo.InvariantCulture),
        };
        VaeModelFormat.Write(stream, snapshot, new VaeFileExtras(metadata, tensors));
    }

    /// <summary>Reads and fully validates a checkpoint file.</summary>
    public static (VaeCheckpointRun Run, VaeTransformer.ColumnNames Columns, VaeTrainingState State) Read(string path)
    {
        var source = $"Checkpoint '{Path.GetFullPath(path)}'";
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{source} does not exist.", path);
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Read(stream, source, stream.Length);
    }

    /// <summary>Reads and fully validates a checkpoint; <paramref name="source"/> names it in errors.</summary>
    public static (VaeCheckpointRun Run, VaeTransformer.ColumnNames Columns, VaeTrainingState State) Read(Stream stream, string source, long? length)
    {
        InvalidDataException Bad(string why) => new($"{source} is not a valid Vae.ML checkpoint: {why}.");

        var file = VaeModelFormat.Read(stream, source, length, ExtraPrefixes);
        var metadata = file.Metadata;
        if (!metadata.TryGetValue(VersionKey, out var versionText))
        {
            throw Bad($"it is a model file without training state ('{VersionKey}' is missing)");
        }

        if (!int.TryParse(versionText, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version < 1 || version > CurrentVersion)
        {
            throw Bad($"it has checkpoint version '{versionText}'; this Vae.ML reads versions 1 to {CurrentVersion}");
        }

        var snapshot = file.Snapshot;
        var run = Deserialize<VaeCheckpointRun>(metadata.TryGetValue(OptionsKey, out var options) ? options : throw Bad($"'{OptionsKey}' is missing"), OptionsKey, Bad);
        var architecture = snapshot.Architecture;
        if (run.HiddenSizes is null || !run.Network.Equals(architecture))
        {
            throw Bad($"its '{OptionsKey}' describe another network than its weights");
        }

        if (run.BatchSize < 1 || run.Epochs < 1 || run.TrainingRows < 1 || run.ValidationRows < 0 || run.KlWarmupEpochs < 0
            || run.EarlyStoppingPatience is < 1
            || !(run.LearningRate > 0) || double.IsInfinity(run.LearningRate) || !run.Beta.Equals(snapshot.Beta)
            || run.DeviceType is not ("cpu" or "cuda"))
        {
            throw Bad($"its '{OptionsKey}' hold a value outside its domain");
        }

        if (!metadata.TryGetValue(EpochKey, out var epochText)
            || !int.TryParse(epochText, NumberStyles.None, CultureInfo.InvariantCulture, out var epoch) || epoch < 1 || epoch > run.Epochs)
        {
            throw Bad($"its '{EpochKey}' is not between 1 and the run's {run.Epochs} epochs");
        }

        var history = snapshot.History;
        if (history.Count != epoch || history.Select((m, i) => m.Epoch != i + 1).Any(wrong => wrong))
        {
            throw Bad($"its history does not list epochs 1 to {epoch}");
        }

        // Exactly the expected extra tensors, with the expected dtypes and shapes.
        var expected = new Dictionary<string, (string DType, long[]? Shape)>(StringComparer.Ordinal);
        // The standardization (Gaussian models) is stored with the weights but not trained: no optimizer state.
        var trained = snapshot.Parameters.Where(p => !GaussianDecoder.IsStandardization(p.Name)).ToList();
        foreach (var (name, shape, _) in trained)
        {
            expected.Add(OptimizerName(name, "exp_avg"), ("F32", shape));
            expected.Add(OptimizerName(name, "exp_avg_sq"), ("F32", shape));
            expected.Add(OptimizerName(name, "step"), ("I64", []));
        }

        // All or none of the best weights: present once an early-stopping run has seen a validation loss.
        var hasBest = snapshot.Parameters.Any(p => file.Tensors.ContainsKey(BestPrefix + p.Name));
        if (hasBest)
        {
            if (run.EarlyStoppingPatience is null)
            {
                throw Bad("it holds best.* weights but its run has no early stopping");
            }

            foreach (var (name, shape, _) in snapshot.Parameters)
            {
                expected.Add(BestPrefix + name, ("F32", shape));
            }
        }

        expected.Add(CpuGenerator, ("U8", null));
        if (run.DeviceType != "cpu")
        {
            expected.Add(DeviceGenerator, ("U8", null));
        }

        var tensors = file.Tensors;
        var missing = expected.Keys.Where(name => !tensors.ContainsKey(name)).ToList();
        var extra = tensors.Keys.Where(name => !expected.ContainsKey(name)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
        {
            throw Bad($"its training state does not match its network: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", extra)}]");
        }

        foreach (var (name, (dtype, shape)) in expected)
        {
            var tensor = tensors[name];
            var shapeOk = shape is null
                ? tensor.Shape.Length == 1 && tensor.Shape[0] is >= 1 and <= MaxGeneratorBytes
                : tensor.Shape.SequenceEqual(shape);
            if (tensor.DType != dtype || !shapeOk)
            {
                throw Bad($"tensor '{name}' is {tensor.DType} {TensorShape.Describe(tensor.Shape)}; expected {dtype} " +
                    (shape is null ? "with one dimension of generator state" : TensorShape.Describe(shape)));
            }
        }

        var optimizer = new List<AdamParameterState>();
        foreach (var (name, _, _) in trained)
        {
            var step = BinaryPrimitives.ReadInt64LittleEndian(tensors[OptimizerName(name, "step")].Data);
            if (step < 0)
            {
                throw Bad($"tensor '{OptimizerName(name, "step")}' holds the negative step {step}");
            }

            optimizer.Add(new AdamParameterState(name, step, Floats(tensors[OptimizerName(name, "exp_avg")].Data),
                Floats(tensors[OptimizerName(name, "exp_avg_sq")].Data)));
        }

        var best = hasBest
            ? snapshot.Parameters.Select(p => (p.Name, p.Shape, Floats(tensors[BestPrefix + p.Name].Data))).ToList()
            : null;
        var state = new VaeTrainingState(epoch, history, snapshot.Parameters, optimizer, tensors[CpuGenerator].Data,
            tensors.TryGetValue(DeviceGenerator, out var device) ? device.Data : null, best);
        return (run, snapshot.Columns, state);
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

        // The likelihood first: the network includes it, but "architecture 8-3-2, but this run has 8-3-2" would not say why.
        if (saved.Likelihood != current.Likelihood)
        {
            Differs(nameof(VaeOptions.Likelihood), saved.Likelihood, current.Likelihood);
        }

        if (!saved.Network.Equals(current.Network))
        {
            Differs("the architecture (input-hidden-latent)", saved.Network.Describe(), current.Network.Describe());
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

        if (saved.KlWarmupEpochs != current.KlWarmupEpochs)
        {
            Differs(nameof(VaeOptions.KlWarmupEpochs), saved.KlWarmupEpochs, current.KlWarmupEpochs);
        }

        if (saved.EarlyStoppingPatience != current.EarlyStoppingPatience)
        {
            Differs(nameof(VaeOptions.EarlyStoppingPatience), saved.EarlyStoppingPatience?.ToString(CultureInfo.InvariantCulture) ?? "off",
                current.EarlyStoppingPatience?.ToString(CultureInfo.InvariantCulture) ?? "off");
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

    private static string OptimizerName(string parameter, string what) => $"optimizer.{parameter}.{what}";

    private static float[] Floats(byte[] littleEndian)
    {
        var values = new float[littleEndian.Length / sizeof(float)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(littleEndian.AsSpan(i * sizeof(float)));
        }

        return values;
    }
}
