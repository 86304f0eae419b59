using System.Globalization;
using ScottPlot;
using SkiaSharp;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Samples.Figures;

/// <summary>A single published number drawn into the loss plot for comparison (e.g. the PyTorch run's epoch-20 loss).</summary>
internal sealed record ReferencePoint(string Label, double Epoch, double Loss);

/// <summary>
/// The report's figures, rendered from plain arrays (no model needed): loss curves and the latent scatter with
/// ScottPlot, image grids with <see cref="DigitGrid"/>. All text uses the embedded font (<see cref="FigureFonts"/>).
/// </summary>
internal static class ReportFigures
{
    /// <summary>Size of the two-panel loss figure.</summary>
    public const int TrainingLossWidth = 1400, TrainingLossHeight = 560;

    /// <summary>Size of the latent scatter figure.</summary>
    public const int LatentSpaceWidth = 900, LatentSpaceHeight = 760;

    private const int MnistSide = 28;

    /// <summary>Left: train and test loss per epoch; right: the train loss's BCE (left axis) and KL (right axis) parts.</summary>
    public static void SaveTrainingLoss(string path, IReadOnlyList<EpochRecord> epochs, IReadOnlyList<ReferencePoint>? reference = null)
    {
        ArgumentNullException.ThrowIfNull(epochs);
        if (epochs.Count == 0)
        {
            throw new ArgumentException("Cannot plot an empty training history.", nameof(epochs));
        }

        FigureFonts.EnsureRegistered();
        double[] x = epochs.Select(e => (double)e.Epoch).ToArray();
        var palette = new ScottPlot.Palettes.Category10();

        var losses = new Plot();
        StylePlot(losses, "Loss per image (BCE + KL)", "Epoch", "Loss per image");
        AddLine(losses, x, epochs.Select(e => e.TrainLoss).ToArray(), "Train (z sampled)", palette.GetColor(0), LinePattern.Solid);
        if (epochs.All(e => e.TestLoss.HasValue))
        {
            AddLine(losses, x, epochs.Select(e => e.TestLoss!.Value).ToArray(), "Test (z sampled)", palette.GetColor(1), LinePattern.Solid);
        }

        if (epochs.All(e => e.TestLossAtMean.HasValue))
        {
            AddLine(losses, x, epochs.Select(e => e.TestLossAtMean!.Value).ToArray(), "Test (z = \u03bc)", palette.GetColor(2), LinePattern.Dashed);
        }

        if (reference is not null)
        {
            MarkerShape[] shapes = [MarkerShape.OpenTriangleUp, MarkerShape.OpenDiamond, MarkerShape.OpenSquare, MarkerShape.Cross];
            for (int i = 0; i < reference.Count; i++)
            {
                var marker = losses.Add.Marker(reference[i].Epoch, reference[i].Loss, shapes[i % shapes.Length], 12, Colors.Black);
                marker.LegendText = reference[i].Label;
            }
        }

        IntegerEpochTicks(losses);
        losses.ShowLegend(Alignment.UpperRight);

        var parts = new Plot();
        StylePlot(parts, "Train loss parts", "Epoch", "Reconstruction (BCE) per image");
        AddLine(parts, x, epochs.Select(e => e.TrainReconstructionLoss).ToArray(), "BCE (left axis)", palette.GetColor(0), LinePattern.Solid);
        var kl = AddLine(parts, x, epochs.Select(e => e.TrainKlDivergence).ToArray(), "KL (right axis)", palette.GetColor(3), LinePattern.Solid);
        kl.Axes.YAxis = parts.Axes.Right;
        parts.Axes.Right.Label.Text = "KL divergence per image";
        parts.Axes.Right.Label.FontSize = 16;
        IntegerEpochTicks(parts);
        parts.ShowLegend(Alignment.MiddleRight);

        // Each panel gets its own surface: ScottPlot clears the whole canvas it renders on.
        int half = TrainingLossWidth / 2;
        using var surface = SKSurface.Create(new SKImageInfo(TrainingLossWidth, TrainingLossHeight));
        surface.Canvas.Clear(SKColors.White);
        foreach ((Plot panel, int left) in new[] { (losses, 0), (parts, half) })
        {
            using var panelSurface = SKSurface.Create(new SKImageInfo(half, TrainingLossHeight));
            panel.Render(panelSurface);
            using SKImage panelImage = panelSurface.Snapshot();
            surface.Canvas.DrawImage(panelImage, left, 0);
        }

        using SKImage image = surface.Snapshot();
        PngFile.Save(image, path);
    }

    /// <summary>
    /// Scatter of latent means coloured by class. Uses the first two of <paramref name="dimensions"/> latent
    /// dimensions (the title says so when there are more). The legend names each label by <paramref name="classNames"/>
    /// (e.g. Fashion-MNIST's "Ankle boot"), or by its number when null.
    /// </summary>
    public static void SaveLatentSpace(string path, ReadOnlySpan<float> latents, int dimensions, ReadOnlySpan<byte> labels, IReadOnlyList<string>? classNames = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 2);
        if (latents.Length != (long)labels.Length * dimensions)
        {
            throw new ArgumentException($"Expected {labels.Length} points x {dimensions} dimensions = {(long)labels.Length * dimensions} latent values, got {latents.Length}.", nameof(latents));
        }

        FigureFonts.EnsureRegistered();
        var palette = new ScottPlot.Palettes.Category10();
        var plot = new Plot();
        string title = dimensions == 2
            ? $"Latent means of {labels.Length:N0} test images"
            : $"Latent means of {labels.Length:N0} test images (dimensions 1-2 of {dimensions})";
        StylePlot(plot, title, "z\u2081", "z\u2082");

        int classes = labels.Length == 0 ? 0 : labels.ToArray().Max() + 1;
        var legend = new List<LegendItem>();
        for (int digit = 0; digit < classes; digit++)
        {
            var xs = new List<double>();
            var ys = new List<double>();
            for (int i = 0; i < labels.Length; i++)
            {
                if (labels[i] == digit)
                {
                    xs.Add(latents[i * dimensions]);
                    ys.Add(latents[i * dimensions + 1]);
                }
            }

            if (xs.Count == 0)
            {
                continue;
            }

            Color color = palette.GetColor(digit).WithAlpha(0.6);
            plot.Add.Markers(xs.ToArray(), ys.ToArray(), MarkerShape.FilledCircle, 3, color);
            // Legend symbols are drawn bigger and opaque than the points so that colours stay readable.
            legend.Add(new LegendItem
            {
                LabelText = ClassName(digit, classNames),
                MarkerShape = MarkerShape.FilledCircle,
                MarkerSize = 12,
                MarkerFillColor = palette.GetColor(digit),
                MarkerLineColor = palette.GetColor(digit),
            });
        }

        plot.Legend.ManualItems.AddRange(legend);
        plot.Legend.DisplayPlottableLegendItems = false;
        plot.Legend.FontSize = 16;
        plot.ShowLegend(Edge.Right);
        plot.SavePng(EnsureFolder(path), LatentSpaceWidth, LatentSpaceHeight);
    }

    /// <summary>A row of test originals over a row of their reconstructions, each column labelled with its class (its digit when <paramref name="classNames"/> is null).</summary>
    public static void SaveReconstructions(string path, ReadOnlySpan<float> originals, ReadOnlySpan<float> reconstructions, ReadOnlySpan<byte> labels,
        IReadOnlyList<string>? classNames = null)
    {
        int count = labels.Length;
        if (originals.Length != reconstructions.Length)
        {
            throw new ArgumentException($"Originals ({originals.Length} values) and reconstructions ({reconstructions.Length} values) differ in size.", nameof(reconstructions));
        }

        var pixels = new float[originals.Length * 2];
        originals.CopyTo(pixels);
        reconstructions.CopyTo(pixels.AsSpan(originals.Length));
        var grid = new DigitGrid
        {
            Title = "Test images (top) and their reconstructions (bottom)",
            RowLabels = ["Original", "Reconstruction"],
            ColumnLabels = labels.ToArray().Select(l => classNames is null ? $"digit {l}" : ClassName(l, classNames)).ToArray(),
        };
        grid.SavePng(path, pixels, 2, count);
    }

    /// <summary>The name of label <paramref name="label"/>: from <paramref name="classNames"/> when it has one, else the number.</summary>
    public static string ClassName(int label, IReadOnlyList<string>? classNames)
        => classNames is not null && label < classNames.Count ? classNames[label] : label.ToString(CultureInfo.InvariantCulture);

    /// <summary>A <paramref name="side"/> x <paramref name="side"/> grid of images decoded from z ~ N(0, I).</summary>
    public static void SaveGeneratedSamples(string path, ReadOnlySpan<float> samples, int side)
    {
        var grid = new DigitGrid { Title = $"{side * side} images decoded from z ~ N(0, I)", Gap = 2 };
        grid.SavePng(path, samples, side, side);
    }

    /// <summary>
    /// Decodings over the latent plane: <paramref name="decodings"/> holds rows top to bottom (z2 from high to
    /// low, as a plot's y axis) and columns left to right (z1 from low to high), as produced from
    /// <see cref="ManifoldLatents"/>.
    /// </summary>
    public static void SaveManifold(string path, ReadOnlySpan<float> decodings, IReadOnlyList<double> z1, IReadOnlyList<double> z2, int latentDimension)
    {
        string Format(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
        var grid = new DigitGrid
        {
            Title = latentDimension == 2
                ? $"Decodings over the latent plane ({z1.Count}x{z2.Count}, N(0,1) quantiles 0.05..0.95)"
                : $"Decodings over latent dimensions 1-2 of {latentDimension} (others 0; N(0,1) quantiles 0.05..0.95)",
            Scale = 2,
            Gap = 0,
            ColumnLabels = z1.Select(Format).ToArray(),
            RowLabels = z2.Reverse().Select(Format).ToArray(),
            XAxisTitle = "z\u2081",
            YAxisTitle = "z\u2082",
            TitleFontSize = 20,
        };
        grid.SavePng(path, decodings, z2.Count, z1.Count);
    }

    /// <summary>
    /// Latent points for <see cref="SaveManifold"/>: row-major, rows for z2 from the highest value down, columns
    /// for z1 ascending; dimensions beyond the second are 0 (the prior's mean).
    /// </summary>
    public static float[] ManifoldLatents(IReadOnlyList<double> z1, IReadOnlyList<double> z2, int latentDimension)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(latentDimension, 2);
        var latents = new float[z1.Count * z2.Count * latentDimension];
        int offset = 0;
        for (int row = 0; row < z2.Count; row++)
        {
            for (int column = 0; column < z1.Count; column++)
            {
                latents[offset] = (float)z1[column];
                latents[offset + 1] = (float)z2[z2.Count - 1 - row];
                offset += latentDimension;
            }
        }

        return latents;
    }

    /// <summary>
    /// Interpolation figure: original A, the decodings along the straight latent line from A's mean to B's mean
    /// (t = 0..1), original B.
    /// </summary>
    public static void SaveInterpolation(string path, ReadOnlySpan<float> originalA, ReadOnlySpan<float> originalB, ReadOnlySpan<float> steps, int stepCount, string description)
    {
        int imageSize = MnistSide * MnistSide;
        if (originalA.Length != imageSize || originalB.Length != imageSize)
        {
            throw new ArgumentException($"Each original must hold {imageSize} pixels (got {originalA.Length} and {originalB.Length}).", nameof(originalA));
        }

        if (stepCount < 2 || steps.Length != stepCount * imageSize)
        {
            throw new ArgumentException($"Expected {stepCount} >= 2 decoded steps of {imageSize} pixels, got {steps.Length} values.", nameof(steps));
        }

        var pixels = new float[(stepCount + 2) * imageSize];
        originalA.CopyTo(pixels);
        steps.CopyTo(pixels.AsSpan(imageSize));
        originalB.CopyTo(pixels.AsSpan((stepCount + 1) * imageSize));
        var labels = new List<string> { "input A" };
        for (int i = 0; i < stepCount; i++)
        {
            labels.Add("t=" + ((double)i / (stepCount - 1)).ToString("0.00", CultureInfo.InvariantCulture));
        }

        labels.Add("input B");
        var grid = new DigitGrid { Title = description, ColumnLabels = labels };
        grid.SavePng(path, pixels, 1, stepCount + 2);
    }

    /// <summary>Points on the straight line from <paramref name="from"/> to <paramref name="to"/> at t = i/(count-1).</summary>
    public static float[] LinearPath(ReadOnlySpan<float> from, ReadOnlySpan<float> to, int count)
    {
        if (from.Length != to.Length)
        {
            throw new ArgumentException($"End points differ in dimension ({from.Length} vs {to.Length}).", nameof(to));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(count, 2);
        int d = from.Length;
        var path = new float[count * d];
        for (int i = 0; i < count; i++)
        {
            float t = (float)i / (count - 1);
            for (int j = 0; j < d; j++)
            {
                path[i * d + j] = from[j] + t * (to[j] - from[j]);
            }
        }

        return path;
    }

    private static void StylePlot(Plot plot, string title, string xLabel, string yLabel)
    {
        plot.Title(title, 20);
        plot.XLabel(xLabel, 16);
        plot.YLabel(yLabel, 16);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
        plot.Axes.Left.TickLabelStyle.FontSize = 14;
        plot.Axes.Right.TickLabelStyle.FontSize = 14;
    }

    private static ScottPlot.Plottables.Scatter AddLine(Plot plot, double[] x, double[] y, string label, Color color, LinePattern pattern)
    {
        var line = plot.Add.Scatter(x, y, color);
        line.LegendText = label;
        line.LineWidth = 2;
        line.MarkerSize = 6;
        line.LinePattern = pattern;
        return line;
    }

    private static void IntegerEpochTicks(Plot plot)
    {
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
    }

    private static string EnsureFolder(string path)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
        }

        return path;
    }
}
