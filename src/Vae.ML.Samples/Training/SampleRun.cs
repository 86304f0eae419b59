using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.ML;
using Vae.ML.Datasets;
using Vae.ML.Samples.Analysis;
using Vae.ML.Samples.Cli;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Samples.Training;

/// <summary>A trained (or loaded) model and, when trained here, its per-epoch numbers.</summary>
internal sealed record TrainedModel(VaeTransformer Model, IReadOnlyList<EpochRecord> Epochs, double TotalSeconds, bool TrainedNow);

/// <summary>
/// The shared steps of all commands: load MNIST (limited to the first N images on request), train with live
/// progress, or load a saved model, and collect the numbers for metrics.json.
/// </summary>
internal sealed class SampleRun
{
    /// <summary>File name of the saved model inside the output folder.</summary>
    public const string ModelFileName = "model.safetensors";

    private readonly CliContext context;
    private readonly CancellationToken cancellationToken;
    private MnistImages? trainImages;
    private MnistImages? testImages;

    public SampleRun(RunSettings settings, CliContext context, CancellationToken cancellationToken)
    {
        Settings = settings;
        this.context = context;
        this.cancellationToken = cancellationToken;
        // Seeded so that ML.NET's own randomness (none in these pipelines today) cannot make runs differ.
        MLContext = new MLContext(settings.Seed);
    }

    public RunSettings Settings { get; }

    public MLContext MLContext { get; }

    /// <summary>The training images (first <see cref="RunSettings.TrainLimit"/> when set), loaded on first use.</summary>
    public MnistImages TrainImages => trainImages ??= Load(MnistSplit.Train, Settings.TrainLimit);

    /// <summary>The test images (first <see cref="RunSettings.TestLimit"/> when set), loaded on first use.</summary>
    public MnistImages TestImages => testImages ??= Load(MnistSplit.Test, Settings.TestLimit);

    /// <summary>The data set's display name: "MNIST" or "Fashion-MNIST".</summary>
    public string DatasetTitle => Settings.Dataset == "fashion-mnist" ? "Fashion-MNIST" : "MNIST";

    /// <summary>Names of the labels for legends: Fashion-MNIST's article names, or null for MNIST's digits.</summary>
    public IReadOnlyList<string>? ClassNames => Settings.Dataset == "fashion-mnist" ? FashionMnist.ClassNames : null;

    /// <summary>Where the images came from and which split they follow (Fashion-MNIST only; null before loading or for MNIST).</summary>
    public FashionMnistFiles? FashionMnistSource { get; private set; }

    /// <summary>Full path of the output folder.</summary>
    public string OutputDirectory => Path.GetFullPath(Settings.OutputDirectory);

    /// <summary>Path of <paramref name="fileName"/> inside the output folder (created on demand).</summary>
    public string OutputPath(string fileName)
    {
        Directory.CreateDirectory(OutputDirectory);
        return Path.Combine(OutputDirectory, fileName);
    }

    /// <summary>The model given with <c>--model</c>, else a newly trained one (saved into the output folder).</summary>
    public TrainedModel LoadOrTrain()
    {
        if (Settings.ModelPath is string path)
        {
            return new TrainedModel(LoadModel(path), [], 0, TrainedNow: false);
        }

        TrainedModel trained = Train();
        SaveModel(trained.Model);
        return trained;
    }

    /// <summary>Trains the report's model on the training images, validating on the test images every epoch.</summary>
    public TrainedModel Train()
    {
        MnistImages train = TrainImages;
        MnistImages test = TestImages;
        context.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Training {(Settings.Architecture == VaeArchitecture.Convolutional ? "convolutional VAE 1x28x28-400" : "VAE 784-400")}-{Settings.LatentDimension} on {train.Labels.Length:N0} images (test: {test.Labels.Length:N0}), " +
            $"{Settings.Epochs} epochs, batch {Settings.BatchSize}, lr {Settings.LearningRate:G}, beta {Settings.Beta:G}, seed {Settings.Seed}, device {Settings.Device}."));

        var epochs = new List<EpochRecord>();
        var display = new TrainingProgressDisplay(context.Console, context.Interactive, context.WriteLine);
        var stopwatch = Stopwatch.StartNew();
        VaeTransformer model = display.Run(Settings.Epochs, (progress, batchProgress) =>
        {
            var options = new VaeOptions
            {
                LatentDimension = Settings.LatentDimension,
                Architecture = Settings.Architecture,
                ImageShape = Settings.Architecture == VaeArchitecture.Convolutional ? [1, train.Rows, train.Columns] : null,
                Epochs = Settings.Epochs,
                BatchSize = Settings.BatchSize,
                LearningRate = Settings.LearningRate,
                Beta = Settings.Beta,
                Seed = Settings.Seed,
                Device = Settings.Device,
                ValidationData = test.ToDataView(MLContext),
                Progress = new EpochSink(metrics =>
                {
                    EpochRecord record = ToRecord(metrics);
                    epochs.Add(record);
                    progress.Report(record);
                }),
                BatchProgress = batchProgress,
                CancellationToken = cancellationToken,
            };
            return MLContext.Transforms.Vae(options).Fit(train.ToDataView(MLContext), cancellationToken);
        });
        stopwatch.Stop();
        context.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Trained in {stopwatch.Elapsed.TotalSeconds:F1} s on {model.Device}."));
        return new TrainedModel(model, epochs, stopwatch.Elapsed.TotalSeconds, TrainedNow: true);
    }

    /// <summary>Saves <paramref name="model"/> as <see cref="ModelFileName"/> in the output folder and says how to reuse it.</summary>
    public string SaveModel(VaeTransformer model)
    {
        string path = OutputPath(ModelFileName);
        model.Save(path);
        context.WriteLine($"Saved the model to {path} (reuse it with --model {path}).");
        return path;
    }

    /// <summary>Loads a model saved by <see cref="SaveModel"/> onto the <c>--device</c> device.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an intact Vae.ML model (the message names it).</exception>
    public VaeTransformer LoadModel(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"--model: the model file '{Path.GetFullPath(path)}' does not exist. Train one with 'vae-ml train' (it writes {ModelFileName} into --out).", path);
        }

        VaeTransformer model = VaeTransformer.Load(MLContext, path, Settings.Device);
        context.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Loaded {path}: VAE {model.InputSize}-{string.Join("-", model.HiddenSizes)}-{model.LatentDimension}, beta {model.Beta:G}, device {model.Device}."));
        return model;
    }

    /// <summary>Latent means of the test images (row-major, <see cref="VaeTransformer.LatentDimension"/> per image).</summary>
    public float[] EncodeTest(VaeTransformer model) => model.Encode(TestImages.CopyPixels(0, TestImages.Count));

    /// <summary>Everything metrics.json holds, for a model trained in this run.</summary>
    /// <param name="trained">The model and its training history.</param>
    /// <param name="separation">Latent class separation, when measured.</param>
    /// <param name="readability">Readability of reconstructions and samples, when measured.</param>
    /// <param name="nllSamples">Sample counts k of the test NLL estimates to compute (none when null).</param>
    public ReportMetrics BuildMetrics(TrainedModel trained, LatentSeparationSummary? separation, ReadabilitySummary? readability, IReadOnlyList<int>? nllSamples = null)
    {
        IReadOnlyList<EpochRecord> epochs = trained.Epochs;
        VaeTransformer model = trained.Model;
        return new ReportMetrics
        {
            Configuration = new RunConfiguration
            {
                Dataset = Settings.Dataset,
                DatasetSource = FashionMnistSource?.Description,
                OfficialSplit = FashionMnistSource is null || FashionMnistSource.SplitKind == FashionMnistSplitKind.Official,
                LatentDimension = model.LatentDimension,
                HiddenSizes = model.HiddenSizes.ToArray(),
                Epochs = Settings.Epochs,
                BatchSize = Settings.BatchSize,
                LearningRate = Settings.LearningRate,
                Beta = model.Beta,
                Seed = Settings.Seed,
                RequestedDevice = Settings.Device,
                TrainImages = TrainImages.Labels.Length,
                TestImages = TestImages.Labels.Length,
            },
            Epochs = epochs,
            FinalTrainLoss = epochs.Count > 0 ? epochs[^1].TrainLoss : null,
            FinalTestLoss = epochs.Count > 0 ? epochs[^1].TestLoss : null,
            FinalTestLossAtMean = epochs.Count > 0 ? epochs[^1].TestLossAtMean : null,
            MeanSecondsPerEpoch = epochs.Count > 0 ? epochs.Average(e => e.Seconds) : 0,
            MedianSecondsPerEpoch = Median(epochs.Select(e => e.Seconds)),
            TotalTrainingSeconds = trained.TotalSeconds,
            Device = model.Device,
            Versions = CurrentVersions(),
            TrainingCurve = epochs.Count > 0 ? TrainingCurveAnalysis.Summarize(epochs) : null,
            LatentSeparation = separation,
            Readability = readability,
            TestNll = nllSamples?.Select(k => MeasureTestNll(model, k)).ToArray(),
        };
    }

    /// <summary>The test images' NLL (IWAE bound with <paramref name="samples"/> samples), seeded with the run's seed.</summary>
    /// <param name="model">The model to evaluate.</param>
    /// <param name="samples">Importance samples k per image.</param>
    /// <param name="images">Only the first N test images (the estimate says how many); null for all.</param>
    public NllEstimate MeasureTestNll(VaeTransformer model, int samples, int? images = null)
    {
        var stopwatch = Stopwatch.StartNew();
        MnistImages test = images is int n && n < TestImages.Count ? TestImages.Take(n) : TestImages;
        double logLikelihood = model.LogLikelihood(test.ToDataView(MLContext), samples, Settings.Seed);
        var estimate = new NllEstimate(samples, test.Count, -logLikelihood, stopwatch.Elapsed.TotalSeconds);
        context.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Test NLL (IWAE, k = {samples}, {estimate.Images:N0} images): {estimate.Nll:F2} nats per image ({estimate.Seconds:F1} s)."));
        return estimate;
    }

    /// <summary>Versions of Vae.ML, TorchSharp, ML.NET and .NET in this process (without source-control suffixes).</summary>
    public static SoftwareVersions CurrentVersions() => new()
    {
        VaeMl = VersionOf(typeof(VaeTransformer).Assembly),
        TorchSharp = VersionOf(FindAssembly("TorchSharp")),
        MlNet = VersionOf(typeof(MLContext).Assembly),
        DotNet = RuntimeInformation.FrameworkDescription,
        OperatingSystem = RuntimeInformation.OSDescription,
        ProcessorCount = Environment.ProcessorCount,
        Processor = ProcessorModel(),
    };

    private static string ProcessorModel()
    {
        try
        {
            string? line = File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))
                : null;
            return line is null ? "unknown" : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return 0;
        }

        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    private MnistImages Load(MnistSplit split, int? limit)
    {
        MnistImages images;
        switch (Settings.Dataset)
        {
            case "mnist":
                images = Mnist.LoadImages(split, Settings.DataDirectory, context.Logger);
                break;
            case "fashion-mnist":
                FashionMnistSource ??= FashionMnist.EnsureFiles(Settings.DataDirectory, context.Logger);
                if (FashionMnistSource.SplitKind != FashionMnistSplitKind.Official && split == MnistSplit.Train)
                {
                    context.WriteLine("WARNING: " + FashionMnistSource.Description);
                }

                images = FashionMnist.LoadImages(split, Settings.DataDirectory, context.Logger);
                break;
            default:
                throw new NotSupportedException($"--dataset {Settings.Dataset} is not supported; use mnist or fashion-mnist.");
        }

        return limit is int n && n < images.Labels.Length ? images.Take(n) : images;
    }

    private static EpochRecord ToRecord(VaeEpochMetrics metrics) => new()
    {
        Epoch = metrics.Epoch,
        TrainLoss = metrics.TrainLoss,
        TrainReconstructionLoss = metrics.TrainReconstructionLoss,
        TrainKlDivergence = metrics.TrainKlDivergence,
        TestLoss = metrics.ValidationLoss,
        TestLossAtMean = metrics.ValidationLossAtMean,
        Seconds = metrics.Seconds,
    };

    private static Assembly? FindAssembly(string name)
    {
        Assembly? loaded = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => a.GetName().Name == name);
        if (loaded is not null)
        {
            return loaded;
        }

        try
        {
            return Assembly.Load(new AssemblyName(name));
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string VersionOf(Assembly? assembly)
    {
        if (assembly is null)
        {
            return "unknown";
        }

        string? version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString();
        if (version is null)
        {
            return "unknown";
        }

        // Informational versions may end in "+<commit>"; metrics.json stays free of source-control details.
        int plus = version.IndexOf('+', StringComparison.Ordinal);
        return plus >= 0 ? version[..plus] : version;
    }

    /// <summary>Synchronous progress sink (the core reports on its training thread).</summary>
    private sealed class EpochSink(Action<VaeEpochMetrics> report) : IProgress<VaeEpochMetrics>
    {
        public void Report(VaeEpochMetrics value) => report(value);
    }
}
