using System.Globalization;
using System.Text;
using ScottPlot;
using Vae.ML.Samples.Figures;

namespace Vae.ML.Samples.Bench;

/// <summary>Writes a bench run as bench.json, results.md (the tables) and PNG plots of the scaling curves.</summary>
internal static class BenchOutput
{
    /// <summary>File names inside the output folder.</summary>
    public const string JsonFile = "bench.json", MarkdownFile = "results.md", RowsPlot = "epoch_vs_rows.png", BatchPlot = "epoch_vs_batch.png",
        ExtractionPlot = "extraction_vs_rows.png", StreamPlot = "stream_rss_vs_rows.png";

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Writes every file into <paramref name="folder"/> and returns their paths.</summary>
    public static IReadOnlyList<string> Write(BenchReport report, string folder)
    {
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        string Path(string name)
        {
            string path = System.IO.Path.Combine(folder, name);
            written.Add(path);
            return path;
        }

        report.Save(Path(JsonFile));
        File.WriteAllText(Path(MarkdownFile), Markdown(report));
        EpochPlot(Path(RowsPlot), "Epoch time vs training rows (batch " + report.Sizes.BatchSize + ")", "Training rows",
            report.EpochByRows, m => m.Rows, logX: false);
        EpochPlot(Path(BatchPlot), "Epoch time vs batch size (" + report.Sizes.TrainRows.ToString("N0", Invariant) + " rows)", "Batch size",
            report.EpochByBatch, m => m.BatchSize, logX: true);
        ExtractionChart(Path(ExtractionPlot), report.Extraction);
        StreamChart(Path(StreamPlot), report.Stream);
        return written;
    }

    /// <summary>The main table (the issue's rows, with same-run ratios and the targets) as Markdown.</summary>
    public static string SummaryTable(BenchReport r)
    {
        var md = new StringBuilder();
        md.AppendLine("| measure | Vae.ML (median [min–max]) | same-run reference | ratio (same run) | target |");
        md.AppendLine("| --- | --- | --- | --- | --- |");
        EpochMeasure e = r.Epoch;
        string torch = e.PyTorch is null ? $"PyTorch: not run ({r.PyTorchSkipped})" : $"PyTorch {Seconds(e.PyTorch)}; GEMM floor {Seconds(e.GemmFloor)}";
        string torchRatio = e.PyTorchOverVaeMl is double p ? F($"Vae.ML **{p:F2}×** faster than PyTorch; ") : "";
        md.AppendLine(F($"| training epoch ({e.Rows:N0} rows, batch {e.BatchSize}) | {Seconds(e.VaeMl)} | {torch} | {torchRatio}epoch / floor **{e.VaeMlOverFloor:F2}** | ≥ 5× faster than PyTorch, ≤ 1.25× floor |"));
        ExtractionMeasure? x = r.Extraction.FirstOrDefault(m => m.Rows == 10_000) ?? r.Extraction.LastOrDefault();
        if (x is not null)
        {
            md.AppendLine(F($"| latent extraction, {x.Rows:N0} cached rows | {Rate(x.RowsPerSecond)} rows/s | encoder FP32 limit {Rate(x.EncoderLimitRowsPerSecond)} rows/s | **{x.OverLimit:F2}** of the limit | ≥ 220k rows/s |"));
        }

        PredictionMeasure pe = r.Prediction;
        md.AppendLine(F($"| `PredictionEngine`, one row, Latent only ({pe.Calls:N0} calls) | median {pe.MedianMicroseconds:F1} µs, p99 {pe.P99Microseconds:F1} µs | bare TorchSharp one-row encoder: median {pe.BareMedianMicroseconds:F1} µs, p99 {pe.BareP99Microseconds:F1} µs | median **{pe.MedianOverBare:F2}×** bare | ≤ 15 µs median, p99 ≤ 60 µs |"));
        MemoryMeasure m = r.Memory;
        string report = m.ReportRunMegabytes is double mb ? F($"{mb:N0} MB") : "not measured";
        string torchRss = m.PyTorchMegabytes is double pm ? F($"PyTorch contender process {pm:N0} MB") : "PyTorch not run";
        string rssRatio = m.ReportRunMegabytes is double a && m.PyTorchMegabytes is double b ? F($"**{a / b:F2}×** PyTorch") : "–";
        string run = m.ReportCommand is null ? "the full `report` run" : $"`{m.ReportCommand.Replace(System.IO.Path.GetTempPath(), "/tmp/", StringComparison.Ordinal)}`";
        md.AppendLine($"| peak RSS of {run} | {report} | {torchRss} | {rssRatio} | ≤ 700 MB (full report) |");
        StreamMeasure s = r.Stream;
        string flat = s.PeakRssByRows.Count == 0 ? "no child ran" : string.Join(", ", s.PeakRssByRows.Select(p => F($"{p.Rows:N0} rows: {p.PeakRssMegabytes:N0} MB")));
        md.AppendLine(F($"| training from a stream (MaxInMemoryBytes = 0), {s.Rows:N0} rows | epoch {Seconds(s.Streamed)} | in-memory epoch {Seconds(s.InMemory)} | **{s.StreamedOverInMemory:F2}×** in-memory; peak RSS {flat} | ≤ 1.5× in-memory; RSS flat in rows |"));
        return md.ToString();
    }

    /// <summary>The whole results page: machine, summary, scaling tables, profile, notes.</summary>
    public static string Markdown(BenchReport r)
    {
        var md = new StringBuilder();
        md.AppendLine(F($"Measured {r.StartedUtc:yyyy-MM-dd HH:mm} UTC in {r.Seconds:F0} s ({r.Sizes.Description}), data: {r.Data}."));
        md.AppendLine();
        md.AppendLine(F($"Machine: {r.Versions.Processor}, {r.Versions.ProcessorCount} logical CPUs, {r.Versions.OperatingSystem}; load average {r.LoadAverage[0]:F1} at the start, {r.LoadAverage[1]:F1} at the end. ") +
            F($"{r.Versions.DotNet}, Vae.ML {r.Versions.VaeMl}, TorchSharp {r.Versions.TorchSharp}, ML.NET {r.Versions.MlNet}; PyTorch {r.PyTorchVersion ?? "not run"}; {r.Sizes.Threads} libtorch threads on both sides."));
        md.AppendLine();
        md.Append(SummaryTable(r));
        md.AppendLine();
        md.AppendLine("### Epoch time vs training rows and batch size");
        md.AppendLine();
        md.AppendLine("| rows | batch | Vae.ML | PyTorch | GEMM floor | PyTorch / Vae.ML | Vae.ML / floor |");
        md.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (EpochMeasure e in r.EpochByRows.Concat(r.EpochByBatch))
        {
            md.AppendLine(F($"| {e.Rows:N0} | {e.BatchSize} | {Seconds(e.VaeMl)} | {(e.PyTorch is null ? "–" : Seconds(e.PyTorch))} | {Seconds(e.GemmFloor)} | {(e.PyTorchOverVaeMl is double ratio ? ratio.ToString("F2", Invariant) : "–")} | {e.VaeMlOverFloor:F2} |"));
        }

        md.AppendLine();
        md.AppendLine("### Latent extraction vs rows");
        md.AppendLine();
        md.AppendLine("| rows | Vae.ML rows/s | encoder limit rows/s | Vae.ML / limit | the source read alone, rows/s |");
        md.AppendLine("| ---: | ---: | ---: | ---: | ---: |");
        foreach (ExtractionMeasure x in r.Extraction)
        {
            md.AppendLine(F($"| {x.Rows:N0} | {Rate(x.RowsPerSecond)} | {Rate(x.EncoderLimitRowsPerSecond)} | {x.OverLimit:F2} | {(x.SourceRowsPerSecond is null ? "–" : Rate(x.SourceRowsPerSecond))} |"));
        }

        if (r.Onnx is { } onnx)
        {
            md.AppendLine();
            md.AppendLine("### Serving through the ONNX export (`ExportOnnx`, docs/onnx.md), same run, all four columns");
            md.AppendLine();
            md.AppendLine(onnx.Table());
        }

        if (r.Variants is { Count: > 0 } variants)
        {
            md.AppendLine();
            md.AppendLine("### Other architectures and likelihoods, each against its PyTorch twin (same run)");
            md.AppendLine();
            md.AppendLine("| network | likelihood | rows | Vae.ML epoch | PyTorch twin epoch | PyTorch / Vae.ML | extraction rows/s | `PredictionEngine` median / p99 |");
            md.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (VariantMeasure v in variants)
            {
                md.AppendLine(F($"| {v.Architecture} | {v.Likelihood} | {v.Rows:N0} | {Seconds(v.VaeMl)} | {(v.PyTorch is null ? "–" : Seconds(v.PyTorch))} | {(v.PyTorchOverVaeMl is double ratio ? ratio.ToString("F2", Invariant) : "–")} | {Rate(v.ExtractionRowsPerSecond)} ({v.ExtractionRows:N0} rows) | {v.PredictionMedianMicroseconds:F1} / {v.PredictionP99Microseconds:F1} µs |"));
            }
        }

        md.AppendLine();
        md.AppendLine(F($"### Where a training step's time goes (batch {r.Sizes.BatchSize}, median of {r.Profile.Steps} steps after {r.Profile.TrainedSteps:N0} training steps, ms per step)"));
        md.AppendLine();
        StepProfile p = r.Profile;
        double libraryStep = r.Epoch.VaeMl.Median * 1000 / Math.Ceiling(r.Epoch.Rows / (double)r.Epoch.BatchSize);
        md.AppendLine("| phase | ms / step | share |");
        md.AppendLine("| --- | ---: | ---: |");
        void Row(string name, double ms) => md.AppendLine(F($"| {name} | {ms:F3} | {ms / p.Total:P0} |"));
        Row("data: permutation slice → index tensor → `index_select`", p.Data);
        Row("forward GEMMs (`addmm_` of every layer)", p.ForwardGemms);
        Row("forward rest (managed): bias, ReLU, ε, reparameterisation, BCE-with-logits and its gradient, KL", Math.Max(0, p.Forward - p.ForwardGemms));
        Row("backward GEMMs (`addmm_`: every weight gradient, input gradients)", p.BackwardGemms);
        Row("backward rest (managed): ReLU masks, latent gradients, bias sums", Math.Max(0, p.Backward - p.BackwardGemms));
        Row("divergence guard: each step's values kept, read every 32 steps", p.Checks);
        Row("optimizer: Adam as one managed pass over the flat buffers", p.Optimizer);
        Row("values read back from libtorch per step", p.Reads);
        Row("releasing the step's tensors (dispose scope)", p.Release);
        md.AppendLine(F($"| **sum** | **{p.Total:F3}** | |"));
        md.AppendLine();
        md.AppendLine(F($"Vae.ML's own epoch above is {libraryStep:F3} ms per step; the profiled loop (written like the library's) {p.Total:F3} ms. ") +
            F($"A whole step at batch 1, where arithmetic is negligible, costs {p.FixedCostPerStep:F3} ms: that is the per-step price of libtorch's dispatch and the .NET↔native calls, ") +
            F($"{p.FixedCostPerStep / Math.Max(p.Total, 1e-9):P0} of a batch-{r.Sizes.BatchSize} step."));
        if (p.Workers > 1)
        {
            md.AppendLine();
            md.AppendLine(F($"The managed passes (bias, ReLU, BCE, bias sums, Adam) ran on {p.Workers} threads in fixed ranges, as the library's step runs them."));
        }

        if (r.Roofline is { } roofline)
        {
            md.AppendLine();
            md.AppendLine(roofline.Describe());
        }
        if (r.Notes.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("Notes:");
            foreach (string note in r.Notes)
            {
                md.AppendLine("- " + note);
            }
        }

        return md.ToString();
    }

    private static string Seconds(Spread s) => F($"{s.Median:F2} s [{s.Min:F2}–{s.Max:F2}]");

    private static string Rate(Spread s) => F($"{s.Median / 1000:N0}k [{s.Min / 1000:N0}k–{s.Max / 1000:N0}k]");

    private static string F(FormattableString text) => text.ToString(Invariant);

    private static void EpochPlot(string path, string title, string xLabel, IReadOnlyList<EpochMeasure> measures, Func<EpochMeasure, int> x, bool logX)
    {
        FigureFonts.EnsureRegistered();
        var plot = new Plot();
        Style(plot, title, xLabel, "Seconds per epoch (median)");
        double[] xs = measures.Select(m => logX ? Math.Log2(x(m)) : x(m)).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        Line(plot, xs, measures.Select(m => m.VaeMl.Median).ToArray(), "Vae.ML", palette.GetColor(0));
        if (measures.All(m => m.PyTorch is not null))
        {
            Line(plot, xs, measures.Select(m => m.PyTorch!.Median).ToArray(), "PyTorch (tensor-fed)", palette.GetColor(1));
        }

        Line(plot, xs, measures.Select(m => m.GemmFloor.Median).ToArray(), "GEMM floor (libtorch)", palette.GetColor(2));
        if (logX)
        {
            plot.Axes.Bottom.SetTicks(xs, measures.Select(m => x(m).ToString(Invariant)).ToArray());
        }

        plot.Axes.SetLimitsY(0, measures.Max(m => Math.Max(m.VaeMl.Max, m.PyTorch?.Max ?? 0)) * 1.1);
        plot.SavePng(path, 900, 600);
    }

    private static void ExtractionChart(string path, IReadOnlyList<ExtractionMeasure> measures)
    {
        FigureFonts.EnsureRegistered();
        var plot = new Plot();
        Style(plot, "Latent extraction throughput (Transform + cursor reading Latent)", "Rows read", "Thousand rows per second (median)");
        double[] xs = measures.Select(m => Math.Log10(m.Rows)).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        Line(plot, xs, measures.Select(m => m.RowsPerSecond.Median / 1000).ToArray(), "Vae.ML", palette.GetColor(0));
        Line(plot, xs, measures.Select(m => m.EncoderLimitRowsPerSecond.Median / 1000).ToArray(), "encoder FP32 limit (libtorch)", palette.GetColor(2));
        plot.Axes.Bottom.SetTicks(xs, measures.Select(m => m.Rows.ToString("N0", Invariant)).ToArray());
        plot.Axes.SetLimitsY(0, measures.Max(m => Math.Max(m.RowsPerSecond.Max, m.EncoderLimitRowsPerSecond.Max)) / 1000 * 1.1);
        plot.SavePng(path, 900, 600);
    }

    private static void StreamChart(string path, StreamMeasure stream)
    {
        FigureFonts.EnsureRegistered();
        var plot = new Plot();
        Style(plot, "Peak RSS of one streamed training epoch (child process)", "Training rows", "Peak RSS, MB");
        if (stream.PeakRssByRows.Count > 0)
        {
            Line(plot, stream.PeakRssByRows.Select(p => (double)p.Rows).ToArray(), stream.PeakRssByRows.Select(p => p.PeakRssMegabytes).ToArray(),
                "Vae.ML, MaxInMemoryBytes = 0", new ScottPlot.Palettes.Category10().GetColor(0));
            plot.Axes.SetLimitsY(0, stream.PeakRssByRows.Max(p => p.PeakRssMegabytes) * 1.2);
        }

        plot.SavePng(path, 900, 600);
    }

    private static void Style(Plot plot, string title, string xLabel, string yLabel)
    {
        plot.Title(title, 18);
        plot.XLabel(xLabel, 15);
        plot.YLabel(yLabel, 15);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 13;
        plot.Axes.Left.TickLabelStyle.FontSize = 13;
        plot.ShowLegend(Alignment.UpperLeft);
    }

    private static void Line(Plot plot, double[] xs, double[] ys, string label, Color color)
    {
        var line = plot.Add.Scatter(xs, ys, color);
        line.LegendText = label;
        line.LineWidth = 2;
        line.MarkerSize = 8;
    }
}
