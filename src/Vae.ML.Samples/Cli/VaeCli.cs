using System.CommandLine;
using System.Globalization;
using Vae.ML.Runtime;
using Vae.ML.Samples.Analysis;
using Vae.ML.Samples.Reporting;
using Vae.ML.Samples.Training;

namespace Vae.ML.Samples.Cli;

/// <summary>
/// The <c>vae-ml</c> command tree: <c>report</c> (everything), <c>train</c>, and one command per figure
/// (<c>reconstruct</c>, <c>latent</c>, <c>generate</c>, <c>manifold</c>, <c>interpolate</c>) that reuses a saved
/// model given with <c>--model</c> or trains one first.
/// </summary>
internal static class VaeCli
{
    /// <summary>Parses <paramref name="args"/> and runs the chosen command; returns the process exit code.</summary>
    /// <remarks>
    /// Ctrl+C / SIGTERM cancel the command's token (training stops at the next batch, exit code 130) instead of
    /// killing the process. System.CommandLine 2.0.0 does that only for asynchronous invocation with an explicit
    /// <see cref="InvocationConfiguration.ProcessTerminationTimeout"/>: a configuration created in code has none.
    /// </remarks>
    public static Task<int> RunAsync(string[] args, CliContext context, TextWriter? output = null)
    {
        InvocationConfiguration configuration = Configuration(context, output);
        configuration.ProcessTerminationTimeout = TimeSpan.FromSeconds(10);
        return BuildRootCommand(context).Parse(args).InvokeAsync(configuration);
    }

    /// <summary>Synchronous <see cref="RunAsync"/> for embedding and tests (no signal handling).</summary>
    public static int Run(string[] args, CliContext context, TextWriter? output = null) =>
        BuildRootCommand(context).Parse(args).Invoke(Configuration(context, output));

    private static InvocationConfiguration Configuration(CliContext context, TextWriter? output)
    {
        var configuration = new InvocationConfiguration { Error = context.Error };
        if (output is not null)
        {
            configuration.Output = output;
        }

        return configuration;
    }

    /// <summary>Builds the command tree; actions write through <paramref name="context"/>.</summary>
    public static RootCommand BuildRootCommand(CliContext context)
    {
        var root = new RootCommand(
            "Variational autoencoder on MNIST with Vae.ML: reproduces the PyTorch report (training curve, reconstructions, " +
            "latent space, samples, manifold, interpolation) and writes figures, metrics.json and report.md.");
        root.Subcommands.Add(ReportCommand(context));
        root.Subcommands.Add(TrainCommand(context));
        root.Subcommands.Add(ReconstructCommand(context));
        root.Subcommands.Add(LatentCommand(context));
        root.Subcommands.Add(GenerateCommand(context));
        root.Subcommands.Add(ManifoldCommand(context));
        root.Subcommands.Add(InterpolateCommand(context));
        root.Subcommands.Add(Bench.BenchCommand.Create(context, Execute));
        root.Subcommands.Add(Anomaly.AnomalyCommand.Create(context));
        root.Subcommands.Add(Onnx.ExportOnnxCommand.Create(context));
        return root;
    }

    private static Command ReportCommand(CliContext context)
    {
        var options = new SampleOptions();
        var command = new Command("report",
            "Train the report's configuration (latent 2, 20 epochs, batch 128, Adam 1e-3, seed 0, validated on the MNIST test set) and write " +
            "every figure, metrics.json, model.safetensors and report.md into --out.");
        AddAll(command, options.Training);
        command.SetAction((parseResult, cancellationToken) => Execute(context, () =>
        {
            var run = new SampleRun(options.Bind(parseResult), context, cancellationToken);
            WriteReport(run, context);
        }));
        return command;
    }

    private static Command TrainCommand(CliContext context)
    {
        var options = new SampleOptions();
        var command = new Command("train", "Train a VAE and write model.safetensors, metrics.json and training_loss.png into --out.");
        AddAll(command, options.Training);
        command.SetAction((parseResult, cancellationToken) => Execute(context, () =>
        {
            var run = new SampleRun(options.Bind(parseResult), context, cancellationToken);
            TrainedModel trained = run.Train();
            using VaeTransformer model = trained.Model;
            run.SaveModel(model);
            FigureSteps.TrainingLoss(run, trained.Epochs);
            run.BuildMetrics(trained, separation: null, readability: null).Save(run.OutputPath("metrics.json"));
            Done(context, run, [FigureSteps.TrainingLossFile, "metrics.json", SampleRun.ModelFileName]);
        }));
        return command;
    }

    private static Command ReconstructCommand(CliContext context)
    {
        var options = new SampleOptions();
        var count = new Option<int>("--count") { Description = "Number of test images to reconstruct (from the first).", DefaultValueFactory = _ => 10 };
        Positive(count);
        return FigureCommand(context, options, "reconstruct", "Write reconstructions.png: test images over their reconstructions.", [count],
            (run, model, parseResult) => FigureSteps.Reconstructions(run, model, parseResult.GetValue(count)));
    }

    private static Command LatentCommand(CliContext context)
    {
        var options = new SampleOptions();
        return FigureCommand(context, options, "latent",
            "Write latent_space.png: the test images at their latent means, coloured by digit; prints class-separation numbers.", [],
            (run, model, _) =>
            {
                (FigureResult result, LatentSeparationSummary separation) = FigureSteps.LatentSpace(run, model);
                context.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"Class separation of {separation.Images:N0} test latent means: {separation.NeighbourCount}-NN accuracy {separation.NearestNeighbourAccuracy:0.0%}, silhouette {separation.Silhouette:F3}."));
                return result;
            });
    }

    private static Command GenerateCommand(CliContext context)
    {
        var options = new SampleOptions();
        var grid = new Option<int>("--grid") { Description = "Side of the square grid of samples.", DefaultValueFactory = _ => 8 };
        Positive(grid);
        return FigureCommand(context, options, "generate", "Write generated_samples.png: a grid of images decoded from z ~ N(0, I).", [grid],
            (run, model, parseResult) => FigureSteps.GeneratedSamples(run, model, parseResult.GetValue(grid)));
    }

    private static Command ManifoldCommand(CliContext context)
    {
        var options = new SampleOptions();
        var grid = new Option<int>("--grid") { Description = "Side of the square grid over the latent plane.", DefaultValueFactory = _ => 20 };
        Positive(grid);
        return FigureCommand(context, options, "manifold",
            "Write latent_manifold.png: decodings over a grid of Gaussian quantiles (0.05..0.95) of the first two latent dimensions.", [grid],
            (run, model, parseResult) => FigureSteps.Manifold(run, model, parseResult.GetValue(grid)));
    }

    private static Command InterpolateCommand(CliContext context)
    {
        var options = new SampleOptions();
        var from = new Option<int>("--from") { Description = "Index of the first test image.", DefaultValueFactory = _ => 0 };
        var to = new Option<int>("--to") { Description = "Index of the second test image.", DefaultValueFactory = _ => 1 };
        var steps = new Option<int>("--steps") { Description = "Decoded points on the line, end points included (at least 2).", DefaultValueFactory = _ => 10 };
        steps.Validators.Add(result =>
        {
            if (SampleOptions.TryGetValue(result, out int value) && value < 2)
            {
                result.AddError($"--steps must be at least 2, got {value}.");
            }
        });
        return FigureCommand(context, options, "interpolate",
            "Write interpolation.png: decodings along the straight line between two test images' latent means.", [from, to, steps],
            (run, model, parseResult) => FigureSteps.Interpolation(run, model, parseResult.GetValue(from), parseResult.GetValue(to), parseResult.GetValue(steps)));
    }

    /// <summary>A command that draws one figure from a model given with --model, or trains one first.</summary>
    private static Command FigureCommand(CliContext context, SampleOptions options, string name, string description, IEnumerable<Option> extra,
        Func<SampleRun, VaeTransformer, ParseResult, FigureResult> draw)
    {
        var command = new Command(name, description + " Uses --model when given, else trains a model first (and saves it).");
        command.Options.Add(options.Model);
        AddAll(command, options.Training);
        AddAll(command, extra);
        command.SetAction((parseResult, cancellationToken) => Execute(context, () =>
        {
            var run = new SampleRun(options.Bind(parseResult), context, cancellationToken);
            TrainedModel trained = run.LoadOrTrain();
            using VaeTransformer model = trained.Model;
            FigureResult result = draw(run, model, parseResult);
            if (result.Note is string note)
            {
                context.WriteLine(note);
            }

            Done(context, run, result.Figure is null ? [] : [result.Figure.FileName]);
        }));
        return command;
    }

    /// <summary>The whole report: train, save, every figure, metrics.json, report.md.</summary>
    private static void WriteReport(SampleRun run, CliContext context)
    {
        TrainedModel trained = run.Train();
        using VaeTransformer model = trained.Model;
        run.SaveModel(model);

        var results = new List<FigureResult> { FigureSteps.TrainingLoss(run, trained.Epochs) };
        (FigureResult latent, LatentSeparationSummary separation) = FigureSteps.LatentSpace(run, model);
        results.Add(FigureSteps.Reconstructions(run, model, 10));
        results.Add(latent);
        results.Add(FigureSteps.GeneratedSamples(run, model, 8));
        results.Add(FigureSteps.Manifold(run, model, 20));
        results.Add(FigureSteps.Interpolation(run, model, 0, Math.Min(1, run.TestImages.Labels.Length - 1), 10));

        ReadabilitySummary readability = ReadabilityStep.Measure(run, model);
        context.WriteLine(ReadabilityStep.Describe(readability));
        ReportMetrics metrics = run.BuildMetrics(trained, separation, readability);
        metrics.Save(run.OutputPath("metrics.json"));
        List<FigureEntry> figures = results.Where(r => r.Figure is not null).Select(r => r.Figure!).ToList();
        List<string> notes = results.Where(r => r.Note is not null).Select(r => r.Note!).ToList();
        ReportWriter.Write(run.OutputPath("report.md"), metrics, figures, context.CommandLine, notes);
        foreach (string note in notes)
        {
            context.WriteLine(note);
        }

        context.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Final: train loss {metrics.FinalTrainLoss:F2}, test loss {metrics.FinalTestLoss:F2} (z sampled), {metrics.FinalTestLossAtMean:F2} (z = mu); " +
            $"PyTorch reference: {PyTorchReference.TrainLossEpoch20} / {PyTorchReference.TestLossEpoch20} / {PyTorchReference.TestLossAtMeanEpoch20}."));
        Done(context, run, [.. figures.Select(f => f.FileName), "metrics.json", "report.md", SampleRun.ModelFileName]);
    }

    private static void Done(CliContext context, SampleRun run, IEnumerable<string> files)
    {
        foreach (string file in files)
        {
            context.WriteLine($"Wrote {Path.Combine(run.OutputDirectory, file)}");
        }
    }

    /// <summary>
    /// Runs a command body, turning the failures a user can fix (bad input, missing data or files - MNIST's
    /// DatasetUnavailableException is an IOException -, a corrupt model file, no usable torch backend, cancellation)
    /// into one clear line on stderr and exit code 1 instead of a stack trace.
    /// </summary>
    internal static async Task<int> Execute(CliContext context, Action body)
    {
        try
        {
            // Off the calling thread: System.CommandLine installs its Ctrl+C / SIGTERM handler only once the action
            // has returned its task, so a body that ran synchronously to the end could never be cancelled.
            await Task.Run(body).ConfigureAwait(false);
            return 0;
        }
        catch (OperationCanceledException)
        {
            context.Error.WriteLine("Cancelled.");
            return 130;
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or NotSupportedException or UnauthorizedAccessException or TorchBackendException)
        {
            context.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static void AddAll(Command command, IEnumerable<Option> options)
    {
        foreach (Option option in options)
        {
            command.Options.Add(option);
        }
    }

    private static void Positive(Option<int> option) =>
        option.Validators.Add(result =>
        {
            if (SampleOptions.TryGetValue(result, out int value) && value < 1)
            {
                result.AddError($"{option.Name} must be at least 1, got {value}.");
            }
        });
}
