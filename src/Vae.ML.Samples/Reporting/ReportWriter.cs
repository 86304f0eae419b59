using System.Globalization;
using System.Text;

namespace Vae.ML.Samples.Reporting;

/// <summary>
/// Numbers of the PyTorch reference run (<c>shared/reference/seed_vae.py</c>: the original report's model and
/// training loop, PyTorch 1.13 on CPU, seed 0, full MNIST, 20 epochs). The original report itself publishes no
/// numbers, only claims; these are what its code produces.
/// </summary>
internal static class PyTorchReference
{
    public const double TrainLossEpoch1 = 188.4;
    public const double TestLossEpoch1 = 169.2;
    public const double TrainLossEpoch20 = 149.4;
    public const double TestLossEpoch20 = 150.9;
    public const double TestLossAtMeanEpoch20 = 149.9;
    public const int Epochs = 20;

    /// <summary>Test NLL (nats per image) of the reference model by the IWAE bound with k = 1, 200, 1000 samples (shared/FACTS.md).</summary>
    public const double TestNllK1 = 150.96;

    /// <summary>See <see cref="TestNllK1"/>.</summary>
    public const double TestNllK200 = 148.19;

    /// <summary>See <see cref="TestNllK1"/>.</summary>
    public const double TestNllK1000 = 147.97;

    /// <summary>Optimiser steps of the reference run: 20 epochs of ceil(60,000 / 128) = 469 batches.</summary>
    public const int StepsPerRun = 20 * 469;
}

/// <summary>A figure that was written, and what it shows.</summary>
internal sealed record FigureEntry(string FileName, string Title, string Caption);

/// <summary>Writes <c>report.md</c>: the figures plus the measured numbers next to the original report's claims and the PyTorch reference.</summary>
internal static class ReportWriter
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Writes the report into <paramref name="path"/>.</summary>
    /// <param name="path">The markdown file to write (its folder is created).</param>
    /// <param name="metrics">The measured numbers (also in metrics.json).</param>
    /// <param name="figures">Figures written next to the report, in display order.</param>
    /// <param name="commandLine">The command that produced the report, shown so that it can be rerun.</param>
    /// <param name="notes">Extra remarks (e.g. figures skipped and why).</param>
    public static void Write(string path, ReportMetrics metrics, IReadOnlyList<FigureEntry> figures, string commandLine, IReadOnlyList<string> notes)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
        }

        File.WriteAllText(path, Render(metrics, figures, commandLine, notes));
    }

    /// <summary>The markdown text of the report.</summary>
    public static string Render(ReportMetrics metrics, IReadOnlyList<FigureEntry> figures, string commandLine, IReadOnlyList<string> notes)
    {
        RunConfiguration config = metrics.Configuration;
        var md = new StringBuilder();
        bool fashion = config.Dataset == "fashion-mnist";
        md.AppendLine(fashion ? "# Variational Autoencoder on Fashion-MNIST with Vae.ML" : "# Variational Autoencoder on MNIST with Vae.ML");
        md.AppendLine();
        if (!config.OfficialSplit)
        {
            md.AppendLine($"> **Not the official split.** {config.DatasetSource} Numbers below are not comparable with published Fashion-MNIST results; see docs/datasets.md.");
            md.AppendLine();
        }

        md.AppendLine("Reproduction of the PyTorch report *Variational Autoencoder on MNIST* (MLP 784-400-latent, BCE + KL,");
        md.AppendLine("Adam) with Vae.ML (ML.NET estimator, TorchSharp). Everything below was produced by one command:");
        md.AppendLine();
        md.AppendLine("```");
        md.AppendLine(commandLine);
        md.AppendLine("```");
        md.AppendLine();
        md.AppendLine("(`vae-ml` is `dotnet run --project src/Vae.ML.Samples -c Release --` from the repository root; for a given seed");
        md.AppendLine("the run repeats bit for bit on the same machine.)");
        md.AppendLine();
        md.AppendLine("## Configuration");
        md.AppendLine();
        md.AppendLine("| | this run | original report |");
        md.AppendLine("|---|---|---|");
        md.AppendLine(Row("Data", $"{config.Dataset}: {config.TrainImages:N0} train / {config.TestImages:N0} test images{(config.DatasetSource is null ? "" : $" ({config.DatasetSource})")}", "MNIST: 60,000 train / 10,000 test"));
        md.AppendLine(Row("Model", $"784-{string.Join("-", config.HiddenSizes)}-{config.LatentDimension} encoder, mirrored decoder", "784-400-2 encoder, mirrored decoder"));
        md.AppendLine(Row("Loss", Beta(config.Beta), "BCE (sum) + KL"));
        md.AppendLine(Row("Optimiser", F($"Adam, lr {config.LearningRate:G}, batch {config.BatchSize}, {config.Epochs} epochs"), "Adam, lr 1e-3, batch 128, 20 epochs"));
        md.AppendLine(Row("Seed", config.Seed?.ToString(Invariant) ?? "none", "not stated (reference run: 0)"));
        md.AppendLine(Row("Device", $"{metrics.Device} (asked: {config.RequestedDevice}); {metrics.Versions.ProcessorCount} logical CPUs, {metrics.Versions.Processor}", "CUDA when available"));
        md.AppendLine(Row("Software", $"Vae.ML {metrics.Versions.VaeMl}, TorchSharp {metrics.Versions.TorchSharp}, ML.NET {metrics.Versions.MlNet}, {metrics.Versions.DotNet}", "PyTorch"));
        md.AppendLine();

        bool sameAsReport = IsReportConfiguration(config);
        md.AppendLine("## Numbers: claims, reference, this run");
        md.AppendLine();
        if (!sameAsReport)
        {
            md.AppendLine("> **Note:** this run's configuration differs from the report's (full MNIST, latent 2, 20 epochs, batch 128,");
            md.AppendLine("> lr 1e-3, beta 1), so the reference numbers are not expected to match.");
            md.AppendLine();
        }

        md.AppendLine("Losses are per image (sum over the 784 pixels of BCE, plus KL), averaged over the split. The original report");
        md.AppendLine("publishes a plot but no numbers; the reference column is its code (`seed_vae.py`, PyTorch 1.13, CPU, seed 0).");
        md.AppendLine();
        md.AppendLine("| quantity | original report | PyTorch reference | this run | difference to reference |");
        md.AppendLine("|---|---|---|---|---|");
        EpochRecord first = metrics.Epochs[0];
        EpochRecord last = metrics.Epochs[^1];
        md.AppendLine(CompareRow("Train loss, epoch 1", "-", PyTorchReference.TrainLossEpoch1, first.TrainLoss));
        md.AppendLine(CompareRow("Test loss, epoch 1", "-", PyTorchReference.TestLossEpoch1, first.TestLoss));
        string atEpoch = last.Epoch == PyTorchReference.Epochs ? $"epoch {last.Epoch}" : $"epoch {last.Epoch} (reference: {PyTorchReference.Epochs})";
        md.AppendLine(CompareRow($"Train loss, {atEpoch}", "curve only", PyTorchReference.TrainLossEpoch20, last.TrainLoss));
        md.AppendLine(CompareRow($"Test loss, {atEpoch}, z sampled", "-", PyTorchReference.TestLossEpoch20, last.TestLoss));
        md.AppendLine(CompareRow($"Test loss, {atEpoch}, z = \u03bc", "-", PyTorchReference.TestLossAtMeanEpoch20, last.TestLossAtMean));
        md.AppendLine(F($"| Time per epoch (training only) | - | - | median {metrics.MedianSecondsPerEpoch:F1} s, mean {metrics.MeanSecondsPerEpoch:F1} s (total {metrics.TotalTrainingSeconds:F0} s) | - |"));
        md.AppendLine();

        md.AppendLine("| claim of the original report | measured here | holds? |");
        md.AppendLine("|---|---|---|");
        if (metrics.TrainingCurve is TrainingCurveSummary curve)
        {
            string increases = curve.TrainLossIncreases.Count == 0
                ? "train loss lower than in the previous epoch at every epoch"
                : $"train loss did not decrease at epoch(s) {string.Join(", ", curve.TrainLossIncreases)}";
            md.AppendLine($"| \"The loss decreases monotonically\" | {increases} | {YesNo(curve.TrainLossMonotone)} |");
            string convergence = curve.ConvergenceEpoch is int epoch
                ? F($"from epoch {epoch} on, no epoch lowers the train loss by {curve.ConvergenceThreshold:0%} or more of its total drop ({curve.TrainLossTotalDrop:F1})")
                : "not measurable (fewer than 2 epochs, or no overall drop)";
            string holds = curve.ConvergenceEpoch is int e ? (Math.Abs(e - 15) <= 3 ? "yes (within 3 epochs of 15)" : F($"no (epoch {e}, not ~15)")) : "n/a";
            md.AppendLine($"| \"Convergence reached after ~15 epochs\" | {convergence} | {holds} |");
        }

        if (metrics.LatentSeparation is LatentSeparationSummary separation)
        {
            md.AppendLine(F($"| \"Digits form distinct clusters\" (latent space) | {separation.NeighbourCount}-nearest-neighbour accuracy of the digit from the latent mean: {separation.NearestNeighbourAccuracy:0.0%} (chance: 10%); silhouette {separation.Silhouette:F3} ({separation.Images:N0} test images, {separation.Dimensions}-D) | {ClusterVerdict(separation)} |"));
        }

        if (metrics.Readability is ReadabilitySummary r)
        {
            string judge = F($"a {r.NeighbourCount}-nearest-neighbour digit classifier in pixel space over the {r.ReferenceImages:N0} training images");
            string confusions = r.ReconstructionConfusions.Count == 0
                ? ""
                : "; most frequent misreadings: " + string.Join(", ", r.ReconstructionConfusions.Select(c => F($"{c.Digit} read as {c.ReadAs} ({c.Count}x)")));
            md.AppendLine(F($"| \"Reconstructions are coherent and readable\" | {judge} finds {r.ReconstructionUnambiguous:0.0%} of the reconstructions of the first {r.TestImages:N0} test images unambiguous, i.e. {r.AgreementThreshold:0%} of the neighbours agree ({r.TestUnambiguous:0.0%} of the originals), but reads the true digit in only {r.ReconstructionAccuracy:0.0%} ({r.TestAccuracy:0.0%} for the originals){confusions} | readable: {Verdict(r.ReconstructionUnambiguous / r.TestUnambiguous)}; the right digit: {Verdict(r.ReconstructionAccuracy / r.TestAccuracy)} |"));
            string counts = string.Join(", ", r.GeneratedLabelCounts.Select((n, digit) => F($"{digit}: {n}")));
            md.AppendLine(F($"| \"Many samples resemble valid MNIST digits\" | {r.GeneratedUnambiguous:0.0%} of {r.GeneratedImages:N0} images decoded from z ~ N(0, I) are unambiguous for the same classifier ({r.TestUnambiguous:0.0%} of real test images); digits assigned: {counts} | {Verdict(r.GeneratedUnambiguous / r.TestUnambiguous)} |"));
        }
        else
        {
            md.AppendLine("| \"Reconstructions are coherent and readable\", \"Many samples resemble valid MNIST digits\" | see the figures below | by eye |");
        }
        md.AppendLine();
        if (sameAsReport && last.TestLoss is double testLoss && first.TestLoss is double firstTestLoss)
        {
            double difference = testLoss - PyTorchReference.TestLossEpoch20;
            md.AppendLine(F($"The final test loss differs from the PyTorch reference by {difference:+0.00;-0.00} ({difference / PyTorchReference.TestLossEpoch20:+0.0%;-0.0%}); after epoch 1 the train and test losses differ by {first.TrainLoss - PyTorchReference.TrainLossEpoch1:+0.00;-0.00} and {firstTestLoss - PyTorchReference.TestLossEpoch1:+0.00;-0.00} (the reference numbers are rounded to 0.1). Vae.ML draws its random numbers in the reference script's order from the same seed (initial weights, per-epoch shuffling, per-batch noise), so what remains is arithmetic: a different libtorch build (2.10 here, PyTorch 1.13 with OpenBLAS there) rounds differently, and the differences compound over the {PyTorchReference.StepsPerRun:N0} optimiser steps."));
            md.AppendLine();
        }

        if (metrics.TestNll is { Count: > 0 } nll)
        {
            md.AppendLine("Test negative log-likelihood −log p(x), nats per image, estimated with k importance samples (IWAE bound, Burda et al. 2015;");
            md.AppendLine(F($"`VaeTransformer.LogLikelihood`; k = 1 is a one-sample ELBO, larger k is tighter). PyTorch original, MNIST, seed 0, 20 epochs: k = 1 {PyTorchReference.TestNllK1}, k = 200 {PyTorchReference.TestNllK200}, k = 1000 {PyTorchReference.TestNllK1000}."));
            md.AppendLine();
            md.AppendLine("| k | images | NLL (nats) | seconds |");
            md.AppendLine("|---:|---:|---:|---:|");
            foreach (NllEstimate estimate in nll)
            {
                md.AppendLine(F($"| {estimate.Samples} | {estimate.Images:N0} | {estimate.Nll:F2} | {estimate.Seconds:F1} |"));
            }

            md.AppendLine();
        }

        foreach (string note in notes)
        {
            md.AppendLine($"> {note}");
            md.AppendLine();
        }

        md.AppendLine("## Figures");
        md.AppendLine();
        foreach (FigureEntry figure in figures)
        {
            md.AppendLine($"### {figure.Title}");
            md.AppendLine();
            md.AppendLine($"![{figure.Title}](./{figure.FileName})");
            md.AppendLine();
            md.AppendLine(figure.Caption);
            md.AppendLine();
        }

        md.AppendLine("## Per-epoch numbers");
        md.AppendLine();
        md.AppendLine("| epoch | train loss | train BCE | train KL | test loss | test loss (z = \u03bc) | seconds |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (EpochRecord epoch in metrics.Epochs)
        {
            md.AppendLine(F($"| {epoch.Epoch} | {epoch.TrainLoss:F2} | {epoch.TrainReconstructionLoss:F2} | {epoch.TrainKlDivergence:F2} | {Number(epoch.TestLoss)} | {Number(epoch.TestLossAtMean)} | {epoch.Seconds:F1} |"));
        }

        md.AppendLine();
        md.AppendLine("All numbers are also in [metrics.json](./metrics.json).");
        return md.ToString();
    }

    /// <summary>Whether the run used the configuration the original report (and the reference numbers) describe.</summary>
    public static bool IsReportConfiguration(RunConfiguration config) =>
        config.Dataset == "mnist" && config.LatentDimension == 2 && config.HiddenSizes.SequenceEqual([400])
        && config.Epochs == PyTorchReference.Epochs && config.BatchSize == 128 && config.LearningRate == 1e-3
        && config.Beta == 1.0 && config.TrainImages == 60_000 && config.TestImages == 10_000;

    private static string ClusterVerdict(LatentSeparationSummary separation)
    {
        var perLabel = separation.NearestNeighbourAccuracyPerLabel
            .Select((accuracy, label) => (Label: label, Accuracy: accuracy))
            .Where(x => !double.IsNaN(x.Accuracy))
            .ToList();
        string Labels(IEnumerable<(int Label, double Accuracy)> items) =>
            string.Join(", ", items.OrderByDescending(x => x.Accuracy).Select(x => F($"{x.Label} ({x.Accuracy:0%})")));
        var clear = perLabel.Where(x => x.Accuracy >= 0.9).ToList();
        var mixed = perLabel.Where(x => x.Accuracy < 0.5).ToList();
        string verdict = separation.NearestNeighbourAccuracy >= 0.9 ? "yes" : separation.NearestNeighbourAccuracy >= 0.5 ? "partly" : "no";
        string detail = (clear.Count > 0 ? $"clear for {Labels(clear)}" : "no digit above 90%")
            + (mixed.Count > 0 ? $"; mixed with neighbours for {Labels(mixed)}" : "");
        return $"{verdict}: {detail} (per-digit accuracy)";
    }

    /// <summary>Verdict from a ratio to the real-image baseline: 1 = as good as real digits.</summary>
    private static string Verdict(double ratioToRealImages) =>
        ratioToRealImages >= 0.9 ? F($"yes ({ratioToRealImages:0%} of the real-image rate)")
        : ratioToRealImages >= 0.5 ? F($"partly ({ratioToRealImages:0%} of the real-image rate)")
        : F($"no ({ratioToRealImages:0%} of the real-image rate)");

    private static string CompareRow(string quantity, string claim, double reference, double? measured)
    {
        if (measured is not double value)
        {
            return F($"| {quantity} | {claim} | {reference:F1} | - | - |");
        }

        double difference = value - reference;
        return F($"| {quantity} | {claim} | {reference:F1} | {value:F2} | {difference:+0.00;-0.00} ({difference / reference:+0.0%;-0.0%}) |");
    }

    private static string Row(string name, string value, string original) => $"| {name} | {value} | {original} |";

    private static string Beta(double beta) => beta == 1.0 ? "BCE (sum) + KL" : F($"BCE (sum) + {beta:G} x KL (beta-VAE)");

    private static string YesNo(bool value) => value ? "yes" : "no";

    private static string Number(double? value) => value is double v ? v.ToString("F2", Invariant) : "-";

    private static string F(FormattableString text) => text.ToString(Invariant);
}
