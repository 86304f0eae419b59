using System.CommandLine;
using System.Globalization;
using Vae.ML.Samples.Cli;

namespace Vae.ML.Samples.Anomaly;

/// <summary>
/// <c>vae-ml anomaly</c>: the VAE anomaly detector against ML.NET's RandomizedPca on the shipped breast cancer data,
/// AUROC from <c>mlContext.AnomalyDetection.Evaluate</c> over several seeds, a table and a ROC figure.
/// </summary>
internal static class AnomalyCommand
{
    public const string RocFileName = "roc.png";
    public const string TableFileName = "auroc.md";

    public static Command Create(CliContext context)
    {
        var defaults = new AnomalySettings();
        var output = new Option<string>("--out", "-o")
        {
            Description = "Folder for roc.png and auroc.md (relative to the current directory).",
            DefaultValueFactory = _ => Path.Combine("docs", "anomaly"),
            HelpName = "dir",
        };
        var seeds = new Option<int>("--seeds") { Description = "Number of seeds (splits and initialisations).", DefaultValueFactory = _ => defaults.Seeds };
        var firstSeed = new Option<int>("--first-seed") { Description = "First seed; the others follow it.", DefaultValueFactory = _ => defaults.FirstSeed };
        var epochs = new Option<int>("--epochs") { Description = "VAE training epochs.", DefaultValueFactory = _ => defaults.Epochs };
        var latent = new Option<int>("--latent") { Description = "VAE latent dimension.", DefaultValueFactory = _ => defaults.LatentDimension };
        var hidden = new Option<int>("--hidden") { Description = "Width of the VAE's hidden layer.", DefaultValueFactory = _ => defaults.HiddenSizes[0] };
        var batchSize = new Option<int>("--batch-size") { Description = "VAE mini-batch size.", DefaultValueFactory = _ => defaults.BatchSize };
        var pcaRank = new Option<int>("--pca-rank") { Description = "Rank of ML.NET's RandomizedPca (its default is 20).", DefaultValueFactory = _ => defaults.PcaRank };
        Option<int>[] positive = [seeds, epochs, latent, hidden, batchSize, pcaRank];
        foreach (Option<int> option in positive)
        {
            option.Validators.Add(result =>
            {
                if (SampleOptions.TryGetValue(result, out int value) && value < 1)
                {
                    result.AddError($"{option.Name} must be at least 1, got {value}.");
                }
            });
        }

        var command = new Command("anomaly",
            "Anomaly detection on the UCI breast cancer data (shipped, CC BY 4.0): train on benign rows only, score held-out benign and all " +
            "malignant rows, and compare the VAE detector's AUROC with ML.NET's RandomizedPca over several seeds; writes roc.png and auroc.md.");
        command.Options.Add(output);
        foreach (Option option in new Option[] { seeds, firstSeed, epochs, latent, hidden, batchSize, pcaRank })
        {
            command.Options.Add(option);
        }

        command.SetAction((parseResult, cancellationToken) => VaeCli.Execute(context, () =>
        {
            var settings = new AnomalySettings
            {
                Seeds = parseResult.GetValue(seeds),
                FirstSeed = parseResult.GetValue(firstSeed),
                Epochs = parseResult.GetValue(epochs),
                LatentDimension = parseResult.GetValue(latent),
                HiddenSizes = [parseResult.GetValue(hidden)],
                BatchSize = parseResult.GetValue(batchSize),
                PcaRank = parseResult.GetValue(pcaRank),
            };
            string folder = parseResult.GetValue(output)!;
            Run(settings, folder, context, cancellationToken);
        }));
        return command;
    }

    /// <summary>Runs the comparison, prints the table and writes the figure and the table into <paramref name="folder"/>.</summary>
    public static IReadOnlyList<DetectorResult> Run(AnomalySettings settings, string folder, CliContext context, CancellationToken cancellationToken)
    {
        BreastCancerRow[] data = BreastCancerData.Load();
        context.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Breast Cancer Wisconsin (Diagnostic): {data.Length} rows, {data.Count(r => r.Malignant)} malignant (the anomaly), {data.Count(r => !r.Malignant)} benign. " +
            $"VAE 30-{settings.HiddenSizes[0]}-{settings.LatentDimension}, {settings.Epochs} epochs, batch {settings.BatchSize}; RandomizedPca rank {settings.PcaRank}."));
        List<DetectorResult> results = AnomalyBenchmark.Run(settings, data, context.WriteLine, cancellationToken);
        string table = AnomalyBenchmark.Table(results);
        context.WriteLine("");
        context.WriteLine("AUROC on held-out rows (mlContext.AnomalyDetection.Evaluate):");
        context.WriteLine(table);

        Directory.CreateDirectory(folder);
        string rocPath = Path.Combine(folder, RocFileName);
        RocFigure.Save(rocPath, results, AnomalyBenchmark.Detectors,
            string.Create(CultureInfo.InvariantCulture, $"Breast cancer: malignant as anomaly, {settings.Seeds} seeds"));
        string tablePath = Path.Combine(folder, TableFileName);
        File.WriteAllText(tablePath, $"Command: `{context.CommandLine}`{Environment.NewLine}{Environment.NewLine}{table}{Environment.NewLine}");
        context.WriteLine($"Wrote {rocPath}");
        context.WriteLine($"Wrote {tablePath}");
        return results;
    }
}
