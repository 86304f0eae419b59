using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Anomaly;

namespace Vae.ML.Samples.Anomaly;

/// <summary>
/// The comparison's settings. The defaults were fixed before any test row was scored and are not tuned on them; the
/// PCA detector runs with ML.NET's defaults (rank 20, zero mean).
/// </summary>
internal sealed record AnomalySettings
{
    public int Seeds { get; init; } = 5;
    public int FirstSeed { get; init; }
    public double TrainFraction { get; init; } = 2.0 / 3;
    public int[] HiddenSizes { get; init; } = [64];
    public int LatentDimension { get; init; } = 4;
    public int Epochs { get; init; } = 300;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 1e-3;
    public int PcaRank { get; init; } = 20;
}

/// <summary>One detector on one seed's split.</summary>
internal sealed record DetectorResult(string Detector, int Seed, double Auroc, double DetectionRateAt10FalsePositives, RocCurve Roc);

/// <summary>
/// Breast cancer as anomaly detection: per seed, 2/3 of the benign rows train (normal data only), the other benign rows
/// and all malignant rows are scored. The VAE is the Gaussian one (<see cref="VaeLikelihood.Gaussian"/>) on the raw
/// features: it standardizes them itself with the training rows' mean and standard deviation. ML.NET's
/// <c>RandomizedPca</c> needs its features on comparable scales, so it runs twice: after <c>NormalizeMinMax</c> and after
/// <c>NormalizeMeanVariance</c>, both fitted on the training rows. The earlier comparison stays in the table for
/// reference: the Bernoulli VAE trained on min-max scaled rows clamped to [0, 1] (as BCE needs), and it and the min-max
/// PCA scoring held-out rows both clamped and as scaled (held-out rows fall outside the training range).
/// </summary>
internal static class AnomalyBenchmark
{
    public const string Vae = "VAE Gaussian (Vae.ML), raw features";
    public const string VaeBernoulli = "VAE Bernoulli, min-max clamped";
    public const string VaeBernoulliUnclamped = "VAE Bernoulli, min-max unclamped";
    public const string Pca = "RandomizedPca (ML.NET), min-max";
    public const string PcaClamped = "RandomizedPca, min-max clamped";
    public const string PcaStandardized = "RandomizedPca, standardized";

    public static string[] Detectors => [Vae, VaeBernoulli, VaeBernoulliUnclamped, Pca, PcaClamped, PcaStandardized];

    private sealed class Row
    {
        [VectorType(BreastCancerData.FeatureCount)]
        public float[] Features { get; set; } = [];

        /// <summary>1 = malignant (the anomaly), 0 = benign; Single, as AnomalyDetection.Evaluate wants it.</summary>
        public float Label { get; set; }
    }

    public static List<DetectorResult> Run(AnomalySettings settings, BreastCancerRow[] data, Action<string> log, CancellationToken cancellationToken)
    {
        var results = new List<DetectorResult>();
        for (int seed = settings.FirstSeed; seed < settings.FirstSeed + settings.Seeds; seed++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var ml = new MLContext(seed);
            (Row[] train, Row[] test) = Split(data, settings.TrainFraction, seed);
            IDataView trainRaw = ml.Data.LoadFromEnumerable(train);
            IDataView testRaw = ml.Data.LoadFromEnumerable(test);
            var minMax = ml.Transforms.NormalizeMinMax("Features", fixZero: false).Fit(trainRaw);
            var meanVariance = ml.Transforms.NormalizeMeanVariance("Features", fixZero: false).Fit(trainRaw);

            VaeOptions Options(VaeLikelihood likelihood) => new()
            {
                Likelihood = likelihood,
                HiddenSizes = settings.HiddenSizes,
                LatentDimension = settings.LatentDimension,
                Epochs = settings.Epochs,
                BatchSize = settings.BatchSize,
                LearningRate = settings.LearningRate,
                Seed = seed,
                CancellationToken = cancellationToken,
            };
            using (VaeAnomalyTransformer vae = ml.AnomalyDetection.Trainers.Vae(Options(VaeLikelihood.Gaussian)).Fit(trainRaw))
            {
                results.Add(Evaluate(ml, Vae, seed, vae.Transform(testRaw)));
            }

            IDataView trainClamped = Clamp(ml, minMax.Transform(trainRaw));
            IDataView testClamped = Clamp(ml, minMax.Transform(testRaw));
            using (VaeAnomalyTransformer vae = ml.AnomalyDetection.Trainers.Vae(Options(VaeLikelihood.Bernoulli)).Fit(trainClamped))
            {
                results.Add(Evaluate(ml, VaeBernoulli, seed, vae.Transform(testClamped)));
                results.Add(Evaluate(ml, VaeBernoulliUnclamped, seed, vae.Transform(minMax.Transform(testRaw))));
            }

            var pca = ml.AnomalyDetection.Trainers.RandomizedPca("Features", rank: settings.PcaRank, ensureZeroMean: true, seed: seed);
            results.Add(Evaluate(ml, Pca, seed, pca.Fit(minMax.Transform(trainRaw)).Transform(minMax.Transform(testRaw))));
            results.Add(Evaluate(ml, PcaClamped, seed, pca.Fit(trainClamped).Transform(testClamped)));
            results.Add(Evaluate(ml, PcaStandardized, seed, pca.Fit(meanVariance.Transform(trainRaw)).Transform(meanVariance.Transform(testRaw))));
            string aurocs = string.Join(", ", results.Where(r => r.Seed == seed).Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Detector} {r.Auroc:F4}")));
            log(string.Create(CultureInfo.InvariantCulture,
                $"Seed {seed}: {train.Length} benign rows train; {test.Count(r => r.Label == 0)} benign + {test.Count(r => r.Label == 1)} malignant scored; AUROC {aurocs}."));
        }

        return results;
    }

    /// <summary>
    /// The seed's split: the benign rows in a seeded random order, the first <paramref name="trainFraction"/> of them to
    /// train; the rest plus every malignant row to score.
    /// </summary>
    private static (Row[] Train, Row[] Test) Split(BreastCancerRow[] data, double trainFraction, int seed)
    {
        var random = new Random(seed);
        BreastCancerRow[] benign = data.Where(r => !r.Malignant).ToArray();
        random.Shuffle(benign);
        int trainCount = (int)Math.Round(benign.Length * trainFraction);
        Row ToRow(BreastCancerRow r) => new() { Features = (float[])r.Features.Clone(), Label = r.Malignant ? 1 : 0 };
        return (benign.Take(trainCount).Select(ToRow).ToArray(),
            benign.Skip(trainCount).Concat(data.Where(r => r.Malignant)).Select(ToRow).ToArray());
    }

    /// <summary>The scaled rows with every feature clamped to [0, 1].</summary>
    private static IDataView Clamp(MLContext ml, IDataView scaled)
    {
        float[][] features = scaled.GetColumn<float[]>("Features").ToArray();
        float[] labels = scaled.GetColumn<float>("Label").ToArray();
        return ml.Data.LoadFromEnumerable(features.Select((f, i) => new Row { Features = f.Select(v => Math.Clamp(v, 0f, 1f)).ToArray(), Label = labels[i] }).ToArray());
    }

    private static DetectorResult Evaluate(MLContext ml, string detector, int seed, IDataView scored)
    {
        AnomalyDetectionMetrics metrics = ml.AnomalyDetection.Evaluate(scored, labelColumnName: "Label", scoreColumnName: "Score", predictedLabelColumnName: "PredictedLabel");
        float[] scores = scored.GetColumn<float>("Score").ToArray();
        bool[] anomalous = scored.GetColumn<float>("Label").Select(l => l == 1).ToArray();
        return new DetectorResult(detector, seed, metrics.AreaUnderRocCurve, metrics.DetectionRateAtFalsePositiveCount, RocCurve.From(scores, anomalous));
    }

    /// <summary>Mean and sample standard deviation (n − 1) of a detector's AUROCs over the seeds.</summary>
    public static (double Mean, double StandardDeviation) Summary(IEnumerable<DetectorResult> results, string detector)
    {
        double[] values = results.Where(r => r.Detector == detector).Select(r => r.Auroc).ToArray();
        double mean = values.Average();
        double sd = values.Length < 2 ? 0 : Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1));
        return (mean, sd);
    }

    /// <summary>The AUROC table in Markdown: one row per detector, one column per seed, then mean ± sd.</summary>
    public static string Table(IReadOnlyList<DetectorResult> results)
    {
        int[] seeds = results.Select(r => r.Seed).Distinct().Order().ToArray();
        var lines = new List<string>
        {
            "| detector | " + string.Join(" | ", seeds.Select(s => $"seed {s}")) + " | mean ± sd |",
            "| --- | " + string.Join(" | ", seeds.Select(_ => "---:")) + " | ---: |",
        };
        foreach (string detector in Detectors)
        {
            (double mean, double sd) = Summary(results, detector);
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {detector} | {string.Join(" | ", seeds.Select(s => results.Single(r => r.Detector == detector && r.Seed == s).Auroc.ToString("F4", CultureInfo.InvariantCulture)))} | {mean:F4} ± {sd:F4} |"));
        }

        return string.Join(Environment.NewLine, lines);
    }
}
