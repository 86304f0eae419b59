using ScottPlot;
using Vae.ML.Samples.Figures;

namespace Vae.ML.Samples.Experiments;

/// <summary>The experiments' own figures: score histograms (out-of-distribution) and reconstructions of several models side by side.</summary>
internal static class ExperimentFigures
{
    /// <summary>Two overlaid histograms of per-image scores, on shared bins (1st to 99th percentile of both).</summary>
    public static void SaveScoreHistograms(string path, string title, string xLabel, (string Label, double[] Values) first, (string Label, double[] Values) second)
    {
        FigureFonts.EnsureRegistered();
        double[] all = [.. first.Values.Where(double.IsFinite), .. second.Values.Where(double.IsFinite)];
        Array.Sort(all);
        double low = all[(int)(0.01 * (all.Length - 1))], high = all[(int)(0.99 * (all.Length - 1))];
        if (!(high > low))
        {
            high = low + 1;
        }

        const int bins = 60;
        double width = (high - low) / bins;
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int index = 0;
        foreach (var (label, values) in new[] { first, second })
        {
            var counts = new double[bins];
            foreach (double v in values)
            {
                if (double.IsFinite(v))
                {
                    counts[Math.Clamp((int)((v - low) / width), 0, bins - 1)]++;
                }
            }

            var positions = Enumerable.Range(0, bins).Select(i => low + (i + 0.5) * width).ToArray();
            var density = counts.Select(c => c / values.Length).ToArray();
            var bars = plot.Add.Bars(positions, density);
            bars.Color = palette.GetColor(index).WithAlpha(0.5);
            foreach (var bar in bars.Bars)
            {
                bar.Size = width;
                bar.LineWidth = 0;
                bar.FillColor = palette.GetColor(index).WithAlpha(0.5);
            }

            bars.LegendText = label;
            index++;
        }

        plot.Title(title, 18);
        plot.XLabel(xLabel, 16);
        plot.YLabel("fraction of images", 16);
        plot.Legend.FontSize = 14;
        plot.ShowLegend(Alignment.UpperRight);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 800, 500);
    }

    /// <summary>One row of originals, then one row of reconstructions per model, columns labelled.</summary>
    public static void SaveReconstructionRows(string path, string title, float[] originals, IReadOnlyList<(string Label, float[] Pixels)> models, IReadOnlyList<string> columnLabels)
    {
        int columns = columnLabels.Count;
        var pixels = new float[originals.Length * (models.Count + 1)];
        originals.CopyTo(pixels, 0);
        for (int i = 0; i < models.Count; i++)
        {
            models[i].Pixels.CopyTo(pixels, originals.Length * (i + 1));
        }

        var grid = new DigitGrid
        {
            Title = title,
            RowLabels = ["Original", .. models.Select(m => m.Label)],
            ColumnLabels = columnLabels,
        };
        grid.SavePng(path, pixels, models.Count + 1, columns);
    }
}
