using System.Globalization;
using System.Text.Json;
using Vae.ML.Datasets;
using Vae.ML.Samples.Analysis;
using Vae.ML.Samples.Cli;
using Vae.ML.Samples.Reporting;
using Vae.ML.Samples.Training;

namespace Vae.ML.Samples.Experiments;

/// <summary>One training configuration of the experiments: data set, network, latent size, β, seed, epochs, data limits.</summary>
internal sealed record RunSpec(string Dataset, VaeArchitecture Architecture, int Latent, double Beta, int Seed, int Epochs, int? TrainLimit, int? TestLimit)
{
    /// <summary>A folder name that identifies the configuration (results are cached under it).</summary>
    public string Key => string.Create(CultureInfo.InvariantCulture,
        $"{Dataset}-{Architecture.ToString().ToLowerInvariant()}-z{Latent}-beta{Beta:0.###}-e{Epochs}-seed{Seed}{(TrainLimit is int n ? $"-train{n}" : "")}{(TestLimit is int m ? $"-test{m}" : "")}");

    /// <summary>Short human label, e.g. "MLP, latent 20, β 1".</summary>
    public string Label => string.Create(CultureInfo.InvariantCulture, $"{(Architecture == VaeArchitecture.Mlp ? "MLP" : "conv")}, latent {Latent}, \u03b2 {Beta:0.###}");
}

/// <summary>What one run measured (per image, on the test split, at the last epoch unless said otherwise).</summary>
internal sealed record RunResult
{
    public required RunSpec Spec { get; init; }
    public required int TrainImages { get; init; }
    public required int TestImages { get; init; }
    public string? DatasetSource { get; init; }
    public bool OfficialSplit { get; init; } = true;
    public required IReadOnlyList<EpochRecord> Epochs { get; init; }

    /// <summary>Test loss with z sampled (as the report's test loop), last epoch.</summary>
    public required double TestLoss { get; init; }

    /// <summary>Test loss at z = μ (reconstruction + β·KL), last epoch.</summary>
    public required double TestLossAtMean { get; init; }

    /// <summary>Reconstruction term (BCE) of the test images at z = μ.</summary>
    public required double TestBce { get; init; }

    /// <summary>KL(q(z|x) ‖ N(0, I)) of the test images (unweighted).</summary>
    public required double TestKl { get; init; }

    /// <summary>Test NLL −log p(x) by the IWAE bound with <see cref="NllSamples"/> samples, over <see cref="NllImages"/> test images.</summary>
    public required double Nll { get; init; }
    public required int NllSamples { get; init; }
    public required int NllImages { get; init; }

    /// <summary>Leave-one-out 5-NN accuracy of the label from the latent mean, and the silhouette (as the report measures).</summary>
    public required double KnnAccuracy { get; init; }
    public required double Silhouette { get; init; }
    public required double TrainSeconds { get; init; }
    public required double MedianEpochSeconds { get; init; }

    /// <summary>Test loss (z sampled) after epoch <paramref name="epoch"/>, when the run got that far.</summary>
    public double? TestLossAtEpoch(int epoch) => Epochs.FirstOrDefault(e => e.Epoch == epoch)?.TestLoss;
}

/// <summary>
/// Trains and measures the experiments' runs, each once: a finished run's model and numbers are kept in
/// <c>{out}/runs/{key}/</c> and reused by later experiments and later invocations (so the long runs can be done one
/// experiment at a time, and an interrupted batch resumes where it stopped).
/// </summary>
internal sealed class ExperimentRuns(ExperimentSettings settings, CliContext context, CancellationToken cancellationToken)
{
    private const string ResultFile = "result.json";

    public ExperimentSettings Settings { get; } = settings;

    public string RunDirectory(RunSpec spec) => Path.Combine(Settings.OutputDirectory, "runs", spec.Key);

    /// <summary>A fresh <see cref="SampleRun"/> for <paramref name="spec"/> (data loading, figures, model files).</summary>
    public SampleRun SampleRunFor(RunSpec spec, string? outputDirectory = null) => new(new RunSettings
    {
        DataDirectory = spec.Dataset == "mnist" ? Settings.MnistDirectory : Settings.FashionDirectory,
        OutputDirectory = outputDirectory ?? RunDirectory(spec),
        Epochs = spec.Epochs,
        LatentDimension = spec.Latent,
        BatchSize = 128,
        LearningRate = 1e-3,
        Beta = spec.Beta,
        Seed = spec.Seed,
        Device = Settings.Device,
        Dataset = spec.Dataset,
        TrainLimit = spec.TrainLimit,
        TestLimit = spec.TestLimit,
        Architecture = spec.Architecture,
    }, context, cancellationToken);

    /// <summary>The run's numbers: from its cache when it already ran, else trained and measured now.</summary>
    public RunResult Get(RunSpec spec)
    {
        string resultPath = Path.Combine(RunDirectory(spec), ResultFile);
        int? nllImages = Settings.NllImagesFor(spec);
        if (File.Exists(resultPath) && File.Exists(Path.Combine(RunDirectory(spec), SampleRun.ModelFileName)))
        {
            var cached = JsonSerializer.Deserialize<RunResult>(File.ReadAllText(resultPath), ReportMetrics.JsonOptions);
            if (cached is not null)
            {
                if (cached.NllSamples == Settings.NllSamples && cached.NllImages == Math.Min(nllImages ?? int.MaxValue, cached.TestImages))
                {
                    context.WriteLine($"[{spec.Key}] reusing the finished run in {RunDirectory(spec)}.");
                    return cached;
                }

                // Only the NLL's settings changed: the trained model stands, so estimate again instead of training again.
                context.WriteLine($"[{spec.Key}] reusing the trained model in {RunDirectory(spec)}; estimating its NLL with the new settings.");
                var rerun = SampleRunFor(spec);
                using VaeTransformer saved = LoadModel(spec, rerun);
                NllEstimate estimate = rerun.MeasureTestNll(saved, Settings.NllSamples, nllImages);
                var remeasured = cached with { Nll = estimate.Nll, NllSamples = estimate.Samples, NllImages = estimate.Images };
                File.WriteAllText(resultPath, JsonSerializer.Serialize(remeasured, ReportMetrics.JsonOptions));
                return remeasured;
            }
        }

        context.WriteLine($"[{spec.Key}] training {spec.Label} on {spec.Dataset}, {spec.Epochs} epochs, seed {spec.Seed}.");
        var run = SampleRunFor(spec);
        TrainedModel trained = run.Train();
        using VaeTransformer model = trained.Model;
        run.SaveModel(model);
        var result = Measure(run, model, trained, nllImages);
        File.WriteAllText(resultPath, JsonSerializer.Serialize(result, ReportMetrics.JsonOptions));
        return result;
    }

    /// <summary>Loads the model a finished run saved (call <see cref="Get"/> first).</summary>
    public VaeTransformer LoadModel(RunSpec spec, SampleRun run) => run.LoadModel(Path.Combine(RunDirectory(spec), SampleRun.ModelFileName));

    private RunResult Measure(SampleRun run, VaeTransformer model, TrainedModel trained, int? nllImages)
    {
        MnistImages test = run.TestImages;
        var (bce, kl) = TestTerms(model, test);
        float[] latents = model.Encode(test.Pixels);
        LatentSeparationSummary separation = LatentSeparation.Measure(latents, model.LatentDimension, test.Labels, neighbourCount: 5);
        NllEstimate nll = run.MeasureTestNll(model, Settings.NllSamples, nllImages);
        EpochRecord last = trained.Epochs[^1];
        double[] seconds = trained.Epochs.Select(e => e.Seconds).Order().ToArray();
        return new RunResult
        {
            Spec = RunSpecOf(run.Settings),
            TrainImages = run.TrainImages.Labels.Length,
            TestImages = test.Labels.Length,
            DatasetSource = run.FashionMnistSource?.Description,
            OfficialSplit = run.FashionMnistSource is null || run.FashionMnistSource.SplitKind == FashionMnistSplitKind.Official,
            Epochs = trained.Epochs,
            TestLoss = last.TestLoss ?? double.NaN,
            TestLossAtMean = last.TestLossAtMean ?? double.NaN,
            TestBce = bce,
            TestKl = kl,
            Nll = nll.Nll,
            NllSamples = nll.Samples,
            NllImages = nll.Images,
            KnnAccuracy = separation.NearestNeighbourAccuracy,
            Silhouette = separation.Silhouette,
            TrainSeconds = trained.TotalSeconds,
            MedianEpochSeconds = seconds.Length == 0 ? 0 : seconds[seconds.Length / 2],
        };
    }

    private static RunSpec RunSpecOf(RunSettings s) => new(s.Dataset, s.Architecture, s.LatentDimension, s.Beta, s.Seed, s.Epochs, s.TrainLimit, s.TestLimit);

    /// <summary>
    /// Mean reconstruction term and KL of the test images at z = μ: KL from the encoder's μ and log σ² in closed form,
    /// reconstruction = Score − β·KL (the Score column is reconstruction + β·KL at z = μ).
    /// </summary>
    private static (double Bce, double Kl) TestTerms(VaeTransformer model, MnistImages test)
    {
        float[] mu = model.Encode(test.Pixels, out float[] logVar);
        float[] scores = model.Score(test.Pixels);
        int d = model.LatentDimension;
        double klSum = 0, scoreSum = 0;
        for (int row = 0; row < scores.Length; row++)
        {
            double kl = 0;
            for (int j = 0; j < d; j++)
            {
                double m = mu[row * d + j], lv = logVar[row * d + j];
                kl += -0.5 * (1 + lv - m * m - Math.Exp(lv));
            }

            klSum += kl;
            scoreSum += scores[row];
        }

        double meanKl = klSum / scores.Length;
        return (scoreSum / scores.Length - model.Beta * meanKl, meanKl);
    }
}
