using System.CommandLine;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Vae.ML.Samples.Bench;
using Vae.ML.Samples.Cli;
using Vae.ML.Samples.Training;

namespace Vae.ML.Samples.Onnx;

/// <summary>
/// <c>vae-ml export-onnx</c>: train with Vae.ML (or load <c>--model</c>), export the VAE to ONNX, check the export against
/// libtorch on the MNIST test set through ONNX Runtime, and measure both serving paths in the same run
/// (<see cref="OnnxServing"/>): PredictionEngine latency and batch throughput; writes model.onnx and onnx-serving.md.
/// </summary>
internal static class ExportOnnxCommand
{
    public const string OnnxFileName = "model.onnx";
    public const string TableFileName = "onnx-serving.md";

    public static Command Create(CliContext context)
    {
        var options = new SampleOptions();
        var calls = new Option<int>("--calls") { Description = "PredictionEngine calls per path (0: skip the timings).", DefaultValueFactory = _ => 2000 };
        var rows = new Option<int>("--rows") { Description = "Rows of each batch-scoring pass (cycling over the test images).", DefaultValueFactory = _ => 10_000 };
        var repeats = new Option<int>("--repeats") { Description = "Batch-scoring passes per path, alternating.", DefaultValueFactory = _ => 3 };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads of libtorch and of ONNX Runtime.", DefaultValueFactory = _ => 2 };
        foreach (Option<int> option in new[] { rows, repeats, threads })
        {
            option.Validators.Add(result =>
            {
                if (SampleOptions.TryGetValue(result, out int value) && value < 1)
                {
                    result.AddError($"{option.Name} must be at least 1, got {value}.");
                }
            });
        }

        calls.Validators.Add(result =>
        {
            if (SampleOptions.TryGetValue(result, out int value) && value < 0)
            {
                result.AddError($"--calls must be 0 or more, got {value}.");
            }
        });

        var command = new Command("export-onnx",
            "Export a VAE to ONNX (model.onnx in --out) so it serves without libtorch, e.g. through mlContext.Transforms.ApplyOnnxModel: " +
            "checks the ONNX outputs against Vae.ML's on the test set, then times PredictionEngine and batch scoring of both paths (onnx-serving.md). " +
            "Uses --model when given, else trains a model first (and saves it).");
        command.Options.Add(options.Model);
        foreach (Option option in options.Training.Concat([calls, rows, repeats, threads]))
        {
            command.Options.Add(option);
        }

        command.SetAction((parseResult, cancellationToken) => VaeCli.Execute(context, () =>
        {
            var run = new SampleRun(options.Bind(parseResult), context, cancellationToken);
            TrainedModel trained = run.LoadOrTrain();
            using VaeTransformer model = trained.Model;
            Run(model, run, new OnnxServingSizes(parseResult.GetValue(calls), parseResult.GetValue(rows), parseResult.GetValue(repeats)),
                parseResult.GetValue(threads), context, cancellationToken);
        }));
        return command;
    }

    /// <summary>Exports, checks and (with calls &gt; 0) measures; returns the worst disagreement per column.</summary>
    public static IReadOnlyDictionary<string, double> Run(VaeTransformer model, SampleRun run, OnnxServingSizes sizes, int threads, CliContext context,
        CancellationToken cancellationToken)
    {
        string onnxPath = run.OutputPath(OnnxFileName);
        model.ExportOnnx(onnxPath);
        context.WriteLine($"Wrote {onnxPath} ({new FileInfo(onnxPath).Length / 1024.0:N0} KiB): input '{model.FeatureColumnName}' float[N, {model.InputSize}], " +
            $"outputs {model.LatentColumnName}, {model.LatentLogVarianceColumnName}, {model.ReconstructionColumnName}, {model.ScoreColumnName}.");

        Dictionary<string, double> worst;
        using (var session = new InferenceSession(onnxPath))
        {
            worst = OnnxAgreement.Compare(model, session, run.TestImages.Pixels, OnnxServingSizes.RuntimeBatch);
        }

        string perColumn = string.Join(", ", worst.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value:E1}")));
        context.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ONNX Runtime against Vae.ML on {run.TestImages.Count:N0} test images, worst relative error per column: {perColumn} (asked: ≤ {OnnxAgreement.Tolerance:E0})."));
        if (worst.Values.Max() > OnnxAgreement.Tolerance)
        {
            throw new InvalidDataException($"The ONNX export disagrees with Vae.ML beyond {OnnxAgreement.Tolerance:E0}; please report this with the model.");
        }

        if (sizes.Calls == 0)
        {
            return worst;
        }

        OnnxServingMeasure measure = OnnxServing.Measure(model, onnxPath, run.TestImages.Pixels, sizes, threads, context.WriteLine, cancellationToken);
        string table = measure.Table();
        context.WriteLine("");
        context.WriteLine(table);
        string tablePath = run.OutputPath(TableFileName);
        File.WriteAllText(tablePath, $"Command: `{context.CommandLine}`{Environment.NewLine}{Environment.NewLine}{table}{Environment.NewLine}");
        context.WriteLine($"Wrote {tablePath}");
        return worst;
    }
}
