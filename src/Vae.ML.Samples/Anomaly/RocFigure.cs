using System.Globalization;
using ScottPlot;
using Vae.ML.Samples.Figures;

namespace Vae.ML.Samples.Anomaly;

/// <summary>The ROC figure of the anomaly comparison: every seed's curve per detector, one colour per detector.</summary>
internal static class RocFigure
{
    public const int Width = 760, Height = 700;

    public static void Save(string path, IReadOnlyList<DetectorResult> results, IReadOnlyList<string> detectors, string title)
    {
        FigureFonts.EnsureRegistered();
        var palette = new ScottPlot.Palettes.Category10();
        var plot = new Plot();
        plot.Title(title, 18);
        plot.XLabel("False positive rate (benign flagged)", 16);
        plot.YLabel("True positive rate (malignant flagged)", 16);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
        plot.Axes.Left.TickLabelStyle.FontSize = 14;

        var chance = plot.Add.Line(0, 0, 1, 1);
        chance.Color = Colors.Gray;
        chance.LinePattern = LinePattern.Dotted;
        chance.LegendText = "chance (AUROC 0.5)";

        LinePattern[] patterns = [LinePattern.Solid, LinePattern.Dashed, LinePattern.DenselyDashed];
        for (int d = 0; d < detectors.Count; d++)
        {
            DetectorResult[] runs = results.Where(r => r.Detector == detectors[d]).ToArray();
            (double mean, double sd) = AnomalyBenchmark.Summary(results, detectors[d]);
            for (int i = 0; i < runs.Length; i++)
            {
                var curve = plot.Add.Scatter(runs[i].Roc.FalsePositiveRates, runs[i].Roc.TruePositiveRates, palette.GetColor(d).WithAlpha(0.7));
                curve.MarkerSize = 0;
                curve.LineWidth = 1.5f;
                curve.LinePattern = patterns[d % patterns.Length];
                curve.ConnectStyle = ConnectStyle.StepVertical;
                if (i == 0)
                {
                    curve.LegendText = string.Create(CultureInfo.InvariantCulture, $"{detectors[d]}: AUROC {mean:F3} ± {sd:F3}");
                }
            }
        }

        plot.Axes.SetLimits(-0.01, 1.01, -0.01, 1.01);
        plot.Legend.FontSize = 14;
        plot.ShowLegend(Alignment.LowerRight);
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
        }

        plot.SavePng(path, Width, Height);
    }
}
