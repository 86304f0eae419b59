using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Data;
using Vae.ML.Internals;
using Vae.ML.Persistence;
using Vae.ML.Torch;

namespace Vae.ML;

/// <summary>
/// Estimator that trains a variational autoencoder (the original report's MLP VAE, or a convolutional one: see
/// <see cref="VaeOptions.Architecture"/>; summed BCE + β·KL, Adam) on a
/// float-vector column and returns a <see cref="VaeTransformer"/>. Create it with
/// <see cref="VaeCatalog.Vae(TransformsCatalog, VaeOptions)"/>.
/// </summary>
public sealed class VaeTrainer : IEstimator<VaeTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly VaeOptions _options;

    internal VaeTrainer(IHostEnvironment env, VaeOptions options)
    {
        _env = env ?? throw new ArgumentNullException(nameof(env));
        _options = options.Clone();
        CheckOptions(_options);
    }

    /// <summary>Trains the VAE on <paramref name="input"/>.</summary>
    /// <param name="input">Data with the feature column (a known-size vector of Single, values in [0, 1]).</param>
    /// <returns>The trained transformer; dispose it to free the network's native memory.</returns>
    public VaeTransformer Fit(IDataView input) => Fit(input, _options.CancellationToken);

    /// <summary>Trains the VAE on <paramref name="input"/>, stopping at a batch boundary when cancelled.</summary>
    /// <param name="input">Data with the feature column (a known-size vector of Single, values in [0, 1]).</param>
    /// <param name="cancellationToken">Cancels training with an <see cref="OperationCanceledException"/>.</param>
    /// <returns>The trained transformer; dispose it to free the network's native memory.</returns>
    /// <exception cref="ArgumentException">The data does not fit the options (column, values, no rows), or
    /// <see cref="VaeOptions.ResumeFrom"/> was trained with other options; the message names the option.</exception>
    /// <exception cref="InvalidDataException"><see cref="VaeOptions.ResumeFrom"/> is not an intact checkpoint.</exception>
    /// <exception cref="VaeTrainingDivergedException">The loss or a gradient became NaN or infinite.</exception>
    /// <exception cref="InvalidOperationException">The data view failed while being read (the original exception is inner).</exception>
    /// <exception cref="OperationCanceledException">Training was cancelled.</exception>
    public VaeTransformer Fit(IDataView input, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var options = _options;
        var inputSize = FeatureColumn.GetVectorSize(input.Schema, options.FeatureColumnName, nameof(VaeOptions.FeatureColumnName));
        var architecture = VaeNetworkSpec.FromOptions(options, inputSize);
        if (options.ValidationData is not null)
        {
            var validationSize = FeatureColumn.GetVectorSize(options.ValidationData.Schema, options.FeatureColumnName, nameof(VaeOptions.ValidationData));
            if (validationSize != inputSize)
            {
                throw new ArgumentException(
                    $"{nameof(VaeOptions.ValidationData)} column '{options.FeatureColumnName}' has {validationSize} values per row; the training data has {inputSize}.");
            }
        }

        // A checkpoint to resume from is read (and fully validated) before any data, so a bad file fails fast.
        var resumePath = options.ResumeFrom is null ? null : CheckpointToResume(options.ResumeFrom);
        var resume = resumePath is null ? default : ReadCheckpoint(resumePath);
        if (options.EarlyStoppingPatience is not null && options.ValidationData is null)
        {
            throw new ArgumentException(
                $"{nameof(VaeOptions.EarlyStoppingPatience)} is {options.EarlyStoppingPatience}, but early stopping needs {nameof(VaeOptions.ValidationData)} " +
                "to measure the validation loss on; set ValidationData or leave EarlyStoppingPatience null.",
                nameof(VaeOptions.EarlyStoppingPatience));
        }

        var host = _env.Register("Vae");
        var seed = options.Seed ?? resume.Run?.Seed ?? host.Rand.Next();
        var logger = options.Logger;
        using var channel = host.Start("Vae");
        void Log(string message)
        {
            logger?.LogInformation("{Message}", message);
            channel.Info(MessageSensitivity.None, "{0}", message);
        }

        void ThrowIfCancelled()
        {
            cancellationToken.ThrowIfCancellationRequested();
            options.CancellationToken.ThrowIfCancellationRequested();
            if (MlNetInternals.IsCancelled(host))
            {
                throw new OperationCanceledException("VAE training was cancelled through the MLContext.");
            }
        }

        var rows = FeatureColumn.CountRows(input, ThrowIfCancelled, "Training data");
        if (rows == 0)
        {
            throw new ArgumentException($"The training data has no rows (column '{options.FeatureColumnName}').", nameof(input));
        }

        var streamed = rows * inputSize * sizeof(float) > options.MaxInMemoryBytes;
        var likelihood = options.Likelihood;
        var standardize = likelihood == VaeLikelihood.Gaussian && options.StandardizeFeatures;
        var standardization = standardize ? new FeatureStandardization.Builder(inputSize) : null;
        ITrainingFeatures train = streamed
            ? ValidatedStream(input, options.FeatureColumnName, inputSize, rows, ThrowIfCancelled, likelihood, standardization)
            : FeatureColumn.ReadAll(input, options.FeatureColumnName, inputSize, rows, "Training data", ThrowIfCancelled, likelihood);

        // The in-memory rows are native memory: freed as soon as Fit ends, not whenever a finalizer runs.
        using var trainMatrix = train as FeatureMatrix;
        if (standardization is not null && train is FeatureMatrix matrix)
        {
            for (var row = 0; row < matrix.Rows; row++)
            {
                standardization.Add(matrix.RowSpan(row, 1));
            }
        }

        using var validation = options.ValidationData is null
            ? null
            : FeatureColumn.ReadAll(options.ValidationData, options.FeatureColumnName, inputSize,
                FeatureColumn.CountRows(options.ValidationData, ThrowIfCancelled, "Validation data"), "Validation data", ThrowIfCancelled, likelihood);

        var model = VaeModel.Create(architecture, seed, options.Device, MlNetInternals.GpuRequest(_env));
        try
        {
            if (standardization is not null)
            {
                model.Standardization = standardization.Build();
            }

            var run = new VaeCheckpointRun(inputSize, options.HiddenSizes, options.LatentDimension, options.BatchSize,
                options.LearningRate, options.Beta, seed, options.Epochs, model.Device.type == TorchSharp.DeviceType.CPU ? "cpu" : "cuda",
                rows, streamed, validation?.Rows ?? 0, architecture.Kind, architecture.ImageShape,
                likelihood, standardize, options.KlWarmupEpochs, options.EarlyStoppingPatience);
            if (resume.Run is not null)
            {
                VaeCheckpoint.CheckResumable(resume.Run, resume.State!.Epoch, run, resumePath!);
            }

            var checkpointing = PrepareCheckpoints(options, run, resume.Run is not null);
            var resuming = resume.State is null ? "" : $", resuming after epoch {resume.State.Epoch} from '{resumePath}'";
            // string.Format rather than string.Create: Stryker's mutants of a concatenated interpolated-string handler
            // argument do not compile (CS1620), which would drop every mutant of Fit (docs/testing.md).
            Log(string.Format(CultureInfo.InvariantCulture,
                "Training VAE {0} on {1} rows ({2}), device {3} ({4}), {5} epochs, batch {6}, lr {7}, beta {8}, seed {9}{10}{11}.",
                architecture.Describe(), rows, streamed ? "streamed" : "in memory", model.Device, model.DeviceChoice, options.Epochs,
                options.BatchSize, options.LearningRate, options.Beta, seed, Controls(options), resuming));
            var settings = new VaeTrainingSettings(options.Epochs, options.BatchSize, options.LearningRate, options.Beta, seed,
                options.KlWarmupEpochs, options.EarlyStoppingPatience, options.BatchProgressInterval);
            List<VaeEpochMetrics> history;
            try
            {
                history = VaeTrainingLoop.Run(model, train, validation, settings,
                    metrics =>
                    {
                        Log(Describe(metrics));
                        options.Progress?.Report(metrics);
                    },
                    ThrowIfCancelled,
                    resume.State,
                    checkpointing,
                    options.BatchProgress is { } batchProgress ? batchProgress.Report : null);
            }
            catch (InvalidDataException e) when (resume.State is not null)
            {
                throw new InvalidDataException($"{nameof(VaeOptions.ResumeFrom)} '{resumePath}' cannot be restored: {e.Message}", e);
            }

            return new VaeTransformer(_env, model, VaeTransformer.ColumnNames.From(options), options.Beta, history);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks that the input has the feature column (a known-size vector of Single) and returns the input schema
    /// plus the four output columns.
    /// </summary>
    /// <param name="inputSchema">The schema of the data the VAE would be trained on.</param>
    /// <returns>The schema after the VAE's transform.</returns>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var name = _options.FeatureColumnName;
        if (!MlNetInternals.TryFindColumn(inputSchema, name, out var column))
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.FeatureColumnName), name,
                $"Input column '{name}' ({nameof(VaeOptions.FeatureColumnName)}) was not found. Columns present: {string.Join(", ", inputSchema.Select(c => c.Name))}.");
        }

        if (column.Kind != SchemaShape.Column.VectorKind.Vector || column.ItemType != NumberDataViewType.Single || column.IsKey)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.FeatureColumnName), name,
                $"Input column '{name}' ({nameof(VaeOptions.FeatureColumnName)}) must be a known-size vector of Single, but is {MlNetInternals.Describe(column)}.");
        }

        return MlNetInternals.WithColumns(inputSchema,
        [
            MlNetInternals.VectorColumn(_options.LatentColumnName, NumberDataViewType.Single),
            MlNetInternals.VectorColumn(_options.LatentLogVarianceColumnName, NumberDataViewType.Single),
            MlNetInternals.VectorColumn(_options.ReconstructionColumnName, NumberDataViewType.Single),
            MlNetInternals.ScalarColumn(_options.ScoreColumnName, NumberDataViewType.Single),
        ]);
    }

    /// <summary>The file itself, or for a folder the checkpoint of its highest epoch.</summary>
    private static string CheckpointToResume(string resumeFrom)
    {
        if (!Directory.Exists(resumeFrom))
        {
            return resumeFrom;
        }

        var checkpoints = VaeCheckpoint.List(resumeFrom);
        return checkpoints.Count > 0
            ? checkpoints[^1].Path
            : throw new ArgumentException(
                $"{nameof(VaeOptions.ResumeFrom)} '{resumeFrom}' is a folder without checkpoints (checkpoint-epoch-NNNN.safetensors).",
                nameof(VaeOptions.ResumeFrom));
    }

    private static (VaeCheckpointRun? Run, VaeTrainingState? State) ReadCheckpoint(string path)
    {
        var (run, _, state) = VaeCheckpoint.Read(path);
        return (run, state);
    }

    /// <summary>
    /// Null without <see cref="VaeOptions.CheckpointDirectory"/>. A fresh run refuses a folder that already holds
    /// checkpoints: pruning and "the newest checkpoint" would otherwise mix two runs.
    /// </summary>
    private static VaeCheckpointing? PrepareCheckpoints(VaeOptions options, VaeCheckpointRun run, bool resuming)
    {
        if (options.CheckpointDirectory is not { } directory)
        {
            return null;
        }

        var existing = VaeCheckpoint.List(directory);
        if (!resuming && existing.Count > 0)
        {
            throw new ArgumentException(
                $"{nameof(VaeOptions.CheckpointDirectory)} '{directory}' already holds {existing.Count} checkpoint(s) (e.g. '{Path.GetFileName(existing[^1].Path)}'). " +
                $"Set {nameof(VaeOptions.ResumeFrom)} to continue that run, delete them, or choose an empty folder.",
                nameof(VaeOptions.CheckpointDirectory));
        }

        Directory.CreateDirectory(directory);
        return new VaeCheckpointing(options.CheckpointEveryEpochs, state => VaeCheckpoint.Save(directory, run, VaeTransformer.ColumnNames.From(options), state, options.KeepLastCheckpoints));
    }

    private static ITrainingFeatures ValidatedStream(IDataView input, string column, int width, long rows, Action throwIfCancelled,
        VaeLikelihood likelihood, FeatureStandardization.Builder? standardization)
    {
        // One validating pass up front, so a bad value is reported with its row index before any training happens;
        // the same pass gathers the standardization's statistics.
        foreach (var row in FeatureColumn.ReadRows(input, column, width, "Training data", throwIfCancelled, likelihood: likelihood))
        {
            standardization?.Add(row);
        }

        return new StreamedFeatures(input, column, width, rows, "Training data", throwIfCancelled, likelihood);
    }

    /// <summary>The training controls that are on, for the run's first log line.</summary>
    private static string Controls(VaeOptions o)
        => (o.KlWarmupEpochs > 0 ? string.Create(CultureInfo.InvariantCulture, $", KL warm-up over {o.KlWarmupEpochs} epochs") : "")
            + (o.EarlyStoppingPatience is int p ? string.Create(CultureInfo.InvariantCulture, $", early stopping after {p} epochs without improvement") : "");

    private static string Describe(VaeEpochMetrics m)
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"Epoch {m.Epoch}/{m.TotalEpochs}: train loss {m.TrainLoss:F4} (reconstruction {m.TrainReconstructionLoss:F4}, KL {m.TrainKlDivergence:F4})");
        if (m.ValidationLoss is double validation)
        {
            text += string.Create(CultureInfo.InvariantCulture, $", validation loss {validation:F4} (at mean {m.ValidationLossAtMean:F4})");
        }

        if (m.EpochsWithoutImprovement is int since)
        {
            text += since == 0 ? ", new best" : string.Create(CultureInfo.InvariantCulture, $", {since} epoch(s) without improvement");
        }

        if (m.StopReason == VaeStopReason.EarlyStopping)
        {
            text += "; stopping early, keeping the best epoch's weights";
        }

        return text + string.Create(CultureInfo.InvariantCulture, $", {m.Seconds:F2} s");
    }

    private static void CheckOptions(VaeOptions o)
    {
        static void Positive(int value, string name)
        {
            if (value < 1)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least 1.");
            }
        }

        VaeNetworkSpec.CheckOptions(o);
        Positive(o.Epochs, nameof(VaeOptions.Epochs));
        Positive(o.BatchSize, nameof(VaeOptions.BatchSize));

        if (!(o.LearningRate > 0) || double.IsInfinity(o.LearningRate))
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.LearningRate), o.LearningRate, "LearningRate must be a positive finite number.");
        }

        if (!(o.Beta >= 0) || double.IsInfinity(o.Beta))
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.Beta), o.Beta, "Beta must be a finite number ≥ 0.");
        }

        if (o.KlWarmupEpochs < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.KlWarmupEpochs), o.KlWarmupEpochs, "KlWarmupEpochs must be ≥ 0 (0 turns warm-up off).");
        }

        if (o.EarlyStoppingPatience is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.EarlyStoppingPatience), o.EarlyStoppingPatience,
                "EarlyStoppingPatience must be at least 1 epoch (null turns early stopping off).");
        }

        if (o.BatchProgressInterval < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.BatchProgressInterval), o.BatchProgressInterval, "BatchProgressInterval must be ≥ 0.");
        }

        if (o.MaxInMemoryBytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.MaxInMemoryBytes), o.MaxInMemoryBytes, "MaxInMemoryBytes must be ≥ 0.");
        }

        if (o.CheckpointEveryEpochs < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.CheckpointEveryEpochs), o.CheckpointEveryEpochs, "CheckpointEveryEpochs must be at least 1.");
        }

        if (o.KeepLastCheckpoints is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.KeepLastCheckpoints), o.KeepLastCheckpoints,
                "KeepLastCheckpoints must be at least 1 (null keeps every checkpoint).");
        }

        if (o.CheckpointDirectory is { } directory && (string.IsNullOrWhiteSpace(directory) || File.Exists(directory)))
        {
            throw new ArgumentException($"CheckpointDirectory '{directory}' must name a folder, not {(File.Exists(directory) ? "a file" : "nothing")}.",
                nameof(VaeOptions.CheckpointDirectory));
        }

        if (o.ResumeFrom is { } resume && string.IsNullOrWhiteSpace(resume))
        {
            throw new ArgumentException("ResumeFrom must name a checkpoint file, or be null.", nameof(VaeOptions.ResumeFrom));
        }

        if (!Enum.IsDefined(o.Likelihood))
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.Likelihood), o.Likelihood, "Likelihood must be VaeLikelihood.Bernoulli or VaeLikelihood.Gaussian.");
        }

        VaeTransformer.ColumnNames.From(o).Check();
        VaeModel.CheckDeviceName(o.Device);
    }
}
