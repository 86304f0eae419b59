using System.CommandLine;
using Vae.ML.Samples.Cli;

namespace Vae.ML.Samples.Bench;

/// <summary>
/// <c>vae-ml bench</c>: measures every row of the performance table (training epoch against PyTorch and the GEMM
/// floor, latent extraction, single-row prediction, peak memory, streamed training, scaling curves, a step profile)
/// and writes a console table, bench.json, results.md and plots.
/// </summary>
internal static class BenchCommand
{
    /// <summary>The command; <paramref name="execute"/> is the CLI's common runner (error lines, exit codes, cancellation).</summary>
    public static Command Create(CliContext context, Func<CliContext, Action, Task<int>> execute)
    {
        var quick = new Option<bool>("--quick") { Description = "A few hundred rows: proves every measure runs (as in CI); its numbers mean little." };
        var output = new Option<string>("--out", "-o") { Description = "Folder for bench.json, results.md and the plots.", DefaultValueFactory = _ => "bench-results", HelpName = "dir" };
        var threads = new Option<int>("--threads") { Description = "libtorch intra-op threads, for both Vae.ML and PyTorch.", DefaultValueFactory = _ => 2 };
        var repeats = new Option<int?>("--repeats") { Description = "Interleaved epochs of the main measure (default 5, quick 2).", HelpName = "N" };
        var rows = new Option<int?>("--rows") { Description = "Training rows of the main measure (default 60,000; quick 384); the row curves then use N/4, N/2, N (streamed also 2N).", HelpName = "N" };
        var batch = new Option<int>("--batch-size") { Description = "Batch size of the main measures.", DefaultValueFactory = _ => 128 };
        var python = new Option<string>("--python") { Description = "Python with torch for the PyTorch contender.", DefaultValueFactory = _ => "/usr/bin/python3", HelpName = "file" };
        var noPyTorch = new Option<bool>("--no-pytorch") { Description = "Do not run the PyTorch contender." };
        var synthetic = new Option<bool>("--synthetic") { Description = "Synthetic 28x28 images instead of MNIST (same shapes, same costs)." };
        var data = new Option<string?>("--data") { Description = "Folder with the MNIST files (default: the usual cache, downloaded when missing).", HelpName = "dir" };
        var skipReport = new Option<bool>("--skip-report-run") { Description = "Do not run 'vae-ml report' as a child for its peak RSS (quick mode runs a one-epoch report on a few hundred rows; both need MNIST)." };
        var render = new Option<string?>("--render") { Description = "Measure nothing: rewrite results.md and the plots in --out from a saved bench.json.", HelpName = "file" };
        var trainingOnly = new Option<bool>("--training-only") { Description = "Only the training epoch against the GEMM floor, the Adam pass's memory roofline and the step profile (managed passes on 1 and on --threads threads); printed, nothing written." };
        var streamWorker = new Option<int?>("--stream-worker") { Description = "Internal: train N rows streamed in this process and print its peak RSS.", Hidden = true };
        foreach (Option<int> option in new[] { threads, batch })
        {
            option.Validators.Add(result =>
            {
                if (SampleOptions.TryGetValue(result, out int value) && value < 1)
                {
                    result.AddError($"{option.Name} must be at least 1, got {value}.");
                }
            });
        }

        foreach (Option<int?> option in new[] { repeats, rows, streamWorker })
        {
            option.Validators.Add(result =>
            {
                if (SampleOptions.TryGetValue(result, out int? value) && value < 1)
                {
                    result.AddError($"{option.Name} must be at least 1, got {value}.");
                }
            });
        }

        var command = new Command("bench",
            "Measure training epochs (interleaved with the PyTorch original and the libtorch GEMM floor), latent extraction, " +
            "PredictionEngine latency, peak memory and streamed training; print a table and write bench.json, results.md and plots into --out.");
        foreach (Option option in new Option[] { quick, output, threads, repeats, rows, batch, python, noPyTorch, synthetic, data, skipReport, render, trainingOnly, streamWorker })
        {
            command.Options.Add(option);
        }

        command.SetAction((parseResult, cancellationToken) => execute(context, () =>
        {
            bool isQuick = parseResult.GetValue(quick);
            int threadCount = parseResult.GetValue(threads);
            BenchSizes sizes = isQuick ? BenchSizes.QuickRun(threadCount) : BenchSizes.Full(threadCount);
            sizes = sizes with { Repeats = parseResult.GetValue(repeats) ?? sizes.Repeats, BatchSize = parseResult.GetValue(batch) };
            if (parseResult.GetValue(rows) is int n)
            {
                // The curves follow the main size: a quarter, half and all of it (streamed: up to twice, past the data).
                sizes = sizes with { TrainRows = n, ScalingRows = [Math.Max(1, n / 4), Math.Max(1, n / 2), n], StreamRows = [Math.Max(1, n / 4), Math.Max(1, n / 2), n, 2 * n] };
            }

            var settings = new BenchSettings(sizes, parseResult.GetValue(output)!, parseResult.GetValue(python)!, !parseResult.GetValue(noPyTorch),
                parseResult.GetValue(synthetic), parseResult.GetValue(data), !parseResult.GetValue(skipReport), parseResult.GetValue(trainingOnly));
            var runner = new BenchRunner(settings, context, cancellationToken);
            if (parseResult.GetValue(streamWorker) is int workerRows)
            {
                runner.RunStreamWorker(workerRows);
                return;
            }

            if (settings.TrainingOnly)
            {
                runner.RunTrainingOnly();
                return;
            }

            BenchReport report = parseResult.GetValue(render) is string saved ? BenchReport.Load(saved) : runner.Run();
            context.WriteLine("");
            context.WriteLine(BenchOutput.SummaryTable(report));
            foreach (string path in BenchOutput.Write(report, settings.OutputDirectory))
            {
                context.WriteLine($"Wrote {path}");
            }
        }));
        return command;
    }
}
