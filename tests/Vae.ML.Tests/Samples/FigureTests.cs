using SkiaSharp;
using Vae.ML.Samples.Analysis;
using Vae.ML.Samples.Figures;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Tests.Samples;

public class DigitGridTests
{
    private const int Side = 28;
    private const int Margin = DigitGrid.Margin;

    [Fact]
    public void Images_are_drawn_row_major_top_row_first_and_upright()
    {
        // One image whose top pixel row is white and everything else black.
        var image = new float[Side * Side];
        for (int x = 0; x < Side; x++)
        {
            image[x] = 1f;
        }

        using SKBitmap bitmap = new DigitGrid { Scale = 2, Gap = 0 }.Render(image, 1, 1);

        bitmap.Width.Should().Be(2 * Margin + Side * 2);
        bitmap.Height.Should().Be(2 * Margin + Side * 2);
        bitmap.GetPixel(Margin, Margin).Should().Be(SKColors.White);
        bitmap.GetPixel(Margin + 55, Margin + 1).Should().Be(SKColors.White, "the top source row covers output rows 0 and 1 at scale 2");
        bitmap.GetPixel(Margin, Margin + 2).Should().Be(new SKColor(0, 0, 0), "the second source row is black");
        bitmap.GetPixel(Margin + 30, Margin + 55).Should().Be(new SKColor(0, 0, 0));
    }

    [Fact]
    public void Cells_follow_each_other_left_to_right_then_top_to_bottom_with_gaps()
    {
        // Four uniform images with distinct grey levels in a 2 x 2 grid.
        float[] levels = [0f, 0.25f, 0.5f, 1f];
        float[] pixels = levels.SelectMany(level => Enumerable.Repeat(level, Side * Side)).ToArray();
        const int scale = 3, gap = 5;

        using SKBitmap bitmap = new DigitGrid { Scale = scale, Gap = gap }.Render(pixels, 2, 2);

        int cell = Side * scale;
        bitmap.Width.Should().Be(2 * Margin + 2 * cell + gap);
        bitmap.Height.Should().Be(2 * Margin + 2 * cell + gap);
        for (int i = 0; i < 4; i++)
        {
            int left = Margin + (i % 2) * (cell + gap);
            int top = Margin + (i / 2) * (cell + gap);
            byte expected = (byte)MathF.Round(levels[i] * 255);
            bitmap.GetPixel(left, top).Should().Be(new SKColor(expected, expected, expected), $"cell {i} starts at ({left}, {top})");
            bitmap.GetPixel(left + cell - 1, top + cell - 1).Should().Be(new SKColor(expected, expected, expected), $"cell {i} ends at ({left + cell - 1}, {top + cell - 1})");
        }

        bitmap.GetPixel(Margin + cell, Margin).Should().Be(SKColors.White, "the gap between cells is background");
    }

    [Fact]
    public void Values_outside_the_unit_interval_are_clamped()
    {
        float[] pixels = Enumerable.Repeat(-3f, Side * Side).Concat(Enumerable.Repeat(7f, Side * Side)).ToArray();

        using SKBitmap bitmap = new DigitGrid { Scale = 1, Gap = 0 }.Render(pixels, 1, 2);

        bitmap.GetPixel(Margin, Margin).Should().Be(new SKColor(0, 0, 0));
        bitmap.GetPixel(Margin + Side, Margin).Should().Be(SKColors.White);
    }

    [Fact]
    public void Title_and_labels_are_drawn_with_the_embedded_font()
    {
        var grid = new DigitGrid { Title = "Title", RowLabels = ["row"], ColumnLabels = ["col"] };

        using SKBitmap bitmap = grid.Render(new float[Side * Side], 1, 1);

        // The title band above the grid must contain dark text pixels.
        int darkInTitle = 0;
        for (int y = 0; y < Margin + (int)grid.TitleFontSize; y++)
        {
            for (int x = 0; x < bitmap.Width; x++)
            {
                if (bitmap.GetPixel(x, y).Red < 128)
                {
                    darkInTitle++;
                }
            }
        }

        darkInTitle.Should().BeGreaterThan(20, "the title is rendered as text");
    }

    [Fact]
    public void Wrong_sizes_and_non_finite_pixels_are_rejected_with_details()
    {
        FluentActions.Invoking(() => new DigitGrid().Render(new float[100], 1, 1))
            .Should().Throw<ArgumentException>().WithMessage("*1 x 1 images of 28x28 = 784 pixels, got 100*");
        FluentActions.Invoking(() => new DigitGrid { RowLabels = ["a"] }.Render(new float[2 * Side * Side], 2, 1))
            .Should().Throw<ArgumentException>().WithMessage("*2 row labels, got 1*");
        var pixels = new float[2 * Side * Side];
        pixels[Side * Side + 3 * Side + 5] = float.NaN;
        FluentActions.Invoking(() => new DigitGrid().Render(pixels, 1, 2))
            .Should().Throw<ArgumentException>().WithMessage("Image 1, pixel (5, 3) is NaN*");
    }
}

public class ReportFiguresTests
{
    private const int ImageSize = 28 * 28;

    private static float[] SyntheticImages(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count * ImageSize).Select(_ => (float)random.NextDouble()).ToArray();
    }

    private static List<EpochRecord> SyntheticHistory(int epochs) =>
        Enumerable.Range(1, epochs).Select(e => new EpochRecord
        {
            Epoch = e,
            TrainLoss = 150 + 40 / (double)e,
            TrainReconstructionLoss = 145 + 41 / (double)e,
            TrainKlDivergence = 5 - 1 / (double)e,
            TestLoss = 151 + 20 / (double)e,
            TestLossAtMean = 150 + 20 / (double)e,
            Seconds = 2,
        }).ToList();

    private static SKBitmap Decode(string path)
    {
        File.Exists(path).Should().BeTrue($"{path} should have been written");
        return SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path} is not a decodable image");
    }

    private static int DistinctColours(SKBitmap bitmap) => bitmap.Pixels.Distinct().Count();

    [Fact]
    public void Plots_use_the_embedded_font_whatever_the_system_has()
    {
        FigureFonts.EnsureRegistered();

        ScottPlot.Fonts.Default.Should().Be(FigureFonts.FamilyName);
        using SKTypeface typeface = ScottPlot.Fonts.GetTypeface("A font nobody has", bold: false, italic: false);
        typeface.FamilyName.Should().Be("DejaVu Sans");
        typeface.GlyphCount.Should().BeGreaterThan(1000);
    }

    [Fact]
    public void Training_loss_figure_has_both_panels()
    {
        using var folder = new TemporaryDirectory();
        string path = folder.File("training_loss.png");

        ReportFigures.SaveTrainingLoss(path, SyntheticHistory(5), [new ReferencePoint("reference", 5, 151)]);

        using SKBitmap bitmap = Decode(path);
        bitmap.Width.Should().Be(ReportFigures.TrainingLossWidth);
        bitmap.Height.Should().Be(ReportFigures.TrainingLossHeight);
        // Both halves carry a plot (curves, text), not just background.
        using SKBitmap left = new(bitmap.Width / 2, bitmap.Height);
        using SKBitmap right = new(bitmap.Width / 2, bitmap.Height);
        bitmap.ExtractSubset(left, new SKRectI(0, 0, bitmap.Width / 2, bitmap.Height)).Should().BeTrue();
        bitmap.ExtractSubset(right, new SKRectI(bitmap.Width / 2, 0, bitmap.Width, bitmap.Height)).Should().BeTrue();
        DistinctColours(left).Should().BeGreaterThan(20);
        DistinctColours(right).Should().BeGreaterThan(20);
    }

    [Fact]
    public void Latent_space_figure_is_written_for_two_and_more_dimensions()
    {
        using var folder = new TemporaryDirectory();
        var random = new Random(3);
        byte[] labels = Enumerable.Range(0, 300).Select(i => (byte)(i % 10)).ToArray();
        foreach (int dimensions in new[] { 2, 5 })
        {
            float[] latents = Enumerable.Range(0, labels.Length * dimensions).Select(_ => (float)random.NextDouble()).ToArray();
            string path = folder.File($"latent_{dimensions}.png");

            ReportFigures.SaveLatentSpace(path, latents, dimensions, labels);

            using SKBitmap bitmap = Decode(path);
            bitmap.Width.Should().Be(ReportFigures.LatentSpaceWidth);
            bitmap.Height.Should().Be(ReportFigures.LatentSpaceHeight);
            DistinctColours(bitmap).Should().BeGreaterThan(10, "ten digit colours plus text");
        }
    }

    [Fact]
    public void Image_grid_figures_are_written_with_one_cell_per_image()
    {
        using var folder = new TemporaryDirectory();

        ReportFigures.SaveReconstructions(folder.File("reconstructions.png"), SyntheticImages(10, 1), SyntheticImages(10, 2), Enumerable.Range(0, 10).Select(i => (byte)i).ToArray());
        ReportFigures.SaveGeneratedSamples(folder.File("generated_samples.png"), SyntheticImages(64, 3), 8);
        double[] grid = GaussianQuantile.Grid(20);
        ReportFigures.SaveManifold(folder.File("latent_manifold.png"), SyntheticImages(400, 4), grid, grid, 2);
        ReportFigures.SaveInterpolation(folder.File("interpolation.png"), SyntheticImages(1, 5), SyntheticImages(1, 6), SyntheticImages(10, 7), 10, "A to B");

        using (SKBitmap reconstructions = Decode(folder.File("reconstructions.png")))
        {
            // 10 cells of 84 px with 9 gaps of 4 px, plus row labels on the left.
            reconstructions.Width.Should().BeGreaterThan(10 * 84 + 9 * 4 + 2 * DigitGrid.Margin);
            reconstructions.Height.Should().BeGreaterThan(2 * 84 + 4 + 2 * DigitGrid.Margin);
        }

        using (SKBitmap generated = Decode(folder.File("generated_samples.png")))
        {
            generated.Width.Should().Be(8 * 84 + 7 * 2 + 2 * DigitGrid.Margin);
            generated.Height.Should().BeGreaterThan(8 * 84 + 7 * 2 + 2 * DigitGrid.Margin, "a title sits above the grid");
        }

        using (SKBitmap manifold = Decode(folder.File("latent_manifold.png")))
        {
            // 20 cells of 56 px without gaps, plus tick labels and axis titles.
            manifold.Width.Should().BeGreaterThan(20 * 56 + 2 * DigitGrid.Margin);
            manifold.Height.Should().BeGreaterThan(20 * 56 + 2 * DigitGrid.Margin);
        }

        using (SKBitmap interpolation = Decode(folder.File("interpolation.png")))
        {
            interpolation.Width.Should().Be(12 * 84 + 11 * 4 + 2 * DigitGrid.Margin);
        }
    }

    [Fact]
    public void Manifold_latents_put_the_highest_z2_in_the_top_row_and_z1_ascending()
    {
        double[] z1 = [-1, 0, 1];
        double[] z2 = [-2, 2];

        float[] latents = ReportFigures.ManifoldLatents(z1, z2, 3);

        latents.Should().Equal(
            -1, 2, 0, 0, 2, 0, 1, 2, 0,
            -1, -2, 0, 0, -2, 0, 1, -2, 0);
    }

    [Fact]
    public void Linear_path_runs_from_the_first_to_the_second_point()
    {
        float[] path = ReportFigures.LinearPath([0f, 10f], [1f, 20f], 3);

        path.Should().Equal(0f, 10f, 0.5f, 15f, 1f, 20f);
    }
}
