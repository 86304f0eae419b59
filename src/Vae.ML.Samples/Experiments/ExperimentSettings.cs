using System.Globalization;

namespace Vae.ML.Samples.Experiments;

/// <summary>The experiments' settings, as bound from <c>vae-ml experiments</c>.</summary>
internal sealed record ExperimentSettings
{
    /// <summary>Names of the experiments, in the order the document lists them.</summary>
    public static readonly string[] Names = ["anchor", "latent", "beta", "arch", "fashion", "ood"];

    public required string OutputDirectory { get; init; }
    public required string DocPath { get; init; }
    public required IReadOnlyList<string> Only { get; init; }
    public required int Seeds { get; init; }
    public required int Epochs { get; init; }
    public required int ConvEpochs { get; init; }
    public required int ConvSeeds { get; init; }
    public int? ConvTrainLimit { get; init; }
    public int? TrainLimit { get; init; }
    public int? TestLimit { get; init; }
    public required int NllSamples { get; init; }

    /// <summary>The runs' test NLL uses the first N test images only (null: all), to keep k = 200 affordable on a CPU.</summary>
    public int? NllImages { get; init; }

    /// <summary>The convolutional runs' test NLL uses the first N test images only (null: as <see cref="NllImages"/>): their decoder costs ~30× the MLP's per sample.</summary>
    public int? ConvNllImages { get; init; }

    /// <summary>Whether the convolutional runs have another budget (epochs, training images) than the MLP runs.</summary>
    public bool ConvBudgetDiffers => ConvEpochs != Epochs || (ConvTrainLimit ?? TrainLimit) != TrainLimit;

    /// <summary>
    /// Test images whose NLL <paramref name="spec"/>'s run estimates (null: all): the convolutional runs' number for them
    /// and for MLP runs at their budget (so that the like-for-like rows are estimated on the same images).
    /// </summary>
    public int? NllImagesFor(RunSpec spec)
    {
        bool atConvBudget = spec.Architecture == VaeArchitecture.Convolutional
            || (ConvBudgetDiffers && spec.Epochs == ConvEpochs && spec.TrainLimit == (ConvTrainLimit ?? TrainLimit));
        return atConvBudget ? ConvNllImages ?? NllImages : NllImages;
    }

    public required int OodNllImages { get; init; }
    public required bool Tiny { get; init; }
    public required string Device { get; init; }
    public string? MnistDirectory { get; init; }
    public string? FashionDirectory { get; init; }

    /// <summary>The model whose log-likelihood the anchor section cross-checks with PyTorch; null: the report configuration's run (MNIST, latent 2, seed 0).</summary>
    public string? AnchorModel { get; init; }

    /// <summary>The tiny mode's sizes (CI: proves every experiment runs end to end, measures nothing).</summary>
    public ExperimentSettings AsTiny() => this with
    {
        Tiny = true,
        TrainLimit = 300,
        TestLimit = 100,
        Epochs = 1,
        Seeds = 1,
        ConvEpochs = Math.Min(ConvEpochs, 1),
        ConvSeeds = 1,
        // Fewer images than the MLP runs, so the smoke test also goes through the like-for-like MLP row.
        ConvTrainLimit = 200,
        ConvNllImages = null,
        NllSamples = Math.Min(NllSamples, 10),
        OodNllImages = 100,
    };

    /// <summary>One line saying what ran, for every section.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{(Tiny ? "TINY MODE (a smoke test, not results): " : "")}{Epochs} epochs, seeds 0..{Seeds - 1}, batch 128, Adam 1e-3, " +
        $"train images {(TrainLimit is int n ? $"first {n:N0}" : "all")}, test images {(TestLimit is int m ? $"first {m:N0}" : "all")}, " +
        $"NLL by the IWAE bound with k = {NllSamples} on {(NllImages is int k ? $"the first {k:N0}" : "all")} test images{(ConvNllImages is int c && ConvEpochs > 0 ? $" (convolutional runs: the first {c:N0})" : "")}, device {Device}");
}
