using SkiaSharp;

namespace Vae.ML.Samples.Figures;

/// <summary>
/// Renders a rows x columns grid of grayscale images (MNIST-style: row-major, top row first, values in [0, 1],
/// drawn white on black) with optional title, row labels, column labels and axis titles.
/// Pixels are scaled by an integer factor with nearest-neighbour sampling so that every source pixel stays a
/// crisp square and cell borders fall on whole pixels.
/// </summary>
internal sealed class DigitGrid
{
    /// <summary>Width of one image in pixels (28 for MNIST).</summary>
    public int ImageWidth { get; init; } = 28;

    /// <summary>Height of one image in pixels (28 for MNIST).</summary>
    public int ImageHeight { get; init; } = 28;

    /// <summary>Integer upscaling factor of every image pixel.</summary>
    public int Scale { get; init; } = 3;

    /// <summary>Gap between neighbouring cells in output pixels (0 = images touch, as in a latent manifold).</summary>
    public int Gap { get; init; } = 4;

    /// <summary>Figure title drawn centred above the grid, or null for none.</summary>
    public string? Title { get; init; }

    /// <summary>One label per row, drawn right-aligned left of the row, or null for none.</summary>
    public IReadOnlyList<string>? RowLabels { get; init; }

    /// <summary>One label per column, drawn centred below the column, or null for none.</summary>
    public IReadOnlyList<string>? ColumnLabels { get; init; }

    /// <summary>Title of the horizontal axis drawn below the column labels, or null for none.</summary>
    public string? XAxisTitle { get; init; }

    /// <summary>Title of the vertical axis drawn rotated left of the row labels, or null for none.</summary>
    public string? YAxisTitle { get; init; }

    /// <summary>Font size of the title in pixels; labels use 70% of it.</summary>
    public float TitleFontSize { get; init; } = 18f;

    /// <summary>White border around the figure, in pixels.</summary>
    public const int Margin = 10;

    /// <summary>Draws <paramref name="rows"/> x <paramref name="columns"/> images taken in row-major order from <paramref name="pixels"/>.</summary>
    /// <exception cref="ArgumentException">Sizes do not match, or a pixel is not a finite number.</exception>
    public SKBitmap Render(ReadOnlySpan<float> pixels, int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(Scale, 1, nameof(Scale));
        ArgumentOutOfRangeException.ThrowIfNegative(Gap, nameof(Gap));
        int imageSize = ImageWidth * ImageHeight;
        long expected = (long)rows * columns * imageSize;
        if (pixels.Length != expected)
        {
            throw new ArgumentException(
                $"Expected {rows} x {columns} images of {ImageWidth}x{ImageHeight} = {expected} pixels, got {pixels.Length}.", nameof(pixels));
        }

        if (RowLabels is not null && RowLabels.Count != rows)
        {
            throw new ArgumentException($"Expected {rows} row labels, got {RowLabels.Count}.", nameof(RowLabels));
        }

        if (ColumnLabels is not null && ColumnLabels.Count != columns)
        {
            throw new ArgumentException($"Expected {columns} column labels, got {ColumnLabels.Count}.", nameof(ColumnLabels));
        }

        using var titleFont = new SKFont(FigureFonts.Typeface, TitleFontSize);
        using var labelFont = new SKFont(FigureFonts.Typeface, TitleFontSize * 0.7f);
        float labelLineHeight = labelFont.Spacing;

        int cellWidth = ImageWidth * Scale;
        int cellHeight = ImageHeight * Scale;
        int gridWidth = columns * cellWidth + (columns - 1) * Gap;
        int gridHeight = rows * cellHeight + (rows - 1) * Gap;

        int yAxisTitleWidth = YAxisTitle is null ? 0 : (int)Math.Ceiling(labelLineHeight) + 4;
        int rowLabelWidth = RowLabels is null ? 0 : (int)Math.Ceiling(RowLabels.Max(l => labelFont.MeasureText(l))) + 8;
        int titleHeight = Title is null ? 0 : (int)Math.Ceiling(titleFont.Spacing) + 6;
        int columnLabelHeight = ColumnLabels is null ? 0 : (int)Math.Ceiling(labelLineHeight) + 4;
        int xAxisTitleHeight = XAxisTitle is null ? 0 : (int)Math.Ceiling(labelLineHeight) + 4;

        int gridLeft = Margin + yAxisTitleWidth + rowLabelWidth;
        int gridTop = Margin + titleHeight;
        int width = gridLeft + gridWidth + Margin;
        int height = gridTop + gridHeight + columnLabelHeight + xAxisTitleHeight + Margin;
        if (Title is not null)
        {
            // A long title must not be clipped by a narrow grid.
            width = Math.Max(width, (int)Math.Ceiling(titleFont.MeasureText(Title)) + 2 * Margin);
        }

        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        try
        {
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(SKColors.White);
            }

            // Images are written straight into the pixel buffer: exact nearest-neighbour blocks, no resampling.
            Span<byte> buffer = bitmap.GetPixelSpan();
            int stride = bitmap.RowBytes;
            for (int row = 0; row < rows; row++)
            {
                for (int column = 0; column < columns; column++)
                {
                    int imageIndex = row * columns + column;
                    ReadOnlySpan<float> image = pixels.Slice(imageIndex * imageSize, imageSize);
                    int left = gridLeft + column * (cellWidth + Gap);
                    int top = gridTop + row * (cellHeight + Gap);
                    WriteImage(image, imageIndex, buffer, stride, left, top);
                }
            }

            using var canvas2 = new SKCanvas(bitmap);
            using var textPaint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            if (Title is not null)
            {
                canvas2.DrawText(Title, width / 2f, Margin - titleFont.Metrics.Ascent, SKTextAlign.Center, titleFont, textPaint);
            }

            float labelBaselineOffset = -labelFont.Metrics.Ascent / 2f - labelFont.Metrics.Descent / 2f;
            if (RowLabels is not null)
            {
                for (int row = 0; row < rows; row++)
                {
                    float centreY = gridTop + row * (cellHeight + Gap) + cellHeight / 2f;
                    canvas2.DrawText(RowLabels[row], gridLeft - 6, centreY + labelBaselineOffset, SKTextAlign.Right, labelFont, textPaint);
                }
            }

            if (ColumnLabels is not null)
            {
                float baseline = gridTop + gridHeight + 2 - labelFont.Metrics.Ascent;
                for (int column = 0; column < columns; column++)
                {
                    float centreX = gridLeft + column * (cellWidth + Gap) + cellWidth / 2f;
                    canvas2.DrawText(ColumnLabels[column], centreX, baseline, SKTextAlign.Center, labelFont, textPaint);
                }
            }

            if (XAxisTitle is not null)
            {
                float baseline = gridTop + gridHeight + columnLabelHeight + 2 - labelFont.Metrics.Ascent;
                canvas2.DrawText(XAxisTitle, gridLeft + gridWidth / 2f, baseline, SKTextAlign.Center, labelFont, textPaint);
            }

            if (YAxisTitle is not null)
            {
                canvas2.Save();
                float x = Margin - labelFont.Metrics.Ascent;
                float y = gridTop + gridHeight / 2f;
                canvas2.RotateDegrees(-90, x, y);
                canvas2.DrawText(YAxisTitle, x, y, SKTextAlign.Center, labelFont, textPaint);
                canvas2.Restore();
            }

            return bitmap;
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    /// <summary>Renders the grid and writes it as a PNG file (creating the folder if needed).</summary>
    public void SavePng(string path, ReadOnlySpan<float> pixels, int rows, int columns)
    {
        using SKBitmap bitmap = Render(pixels, rows, columns);
        PngFile.Save(bitmap, path);
    }

    private void WriteImage(ReadOnlySpan<float> image, int imageIndex, Span<byte> buffer, int stride, int left, int top)
    {
        for (int y = 0; y < ImageHeight; y++)
        {
            for (int x = 0; x < ImageWidth; x++)
            {
                float value = image[y * ImageWidth + x];
                if (!float.IsFinite(value))
                {
                    throw new ArgumentException($"Image {imageIndex}, pixel ({x}, {y}) is {value}; expected a finite value in [0, 1].", nameof(image));
                }

                byte gray = (byte)MathF.Round(Math.Clamp(value, 0f, 1f) * 255f);
                for (int dy = 0; dy < Scale; dy++)
                {
                    int offset = (top + y * Scale + dy) * stride + (left + x * Scale) * 4;
                    for (int dx = 0; dx < Scale; dx++)
                    {
                        buffer[offset++] = gray;
                        buffer[offset++] = gray;
                        buffer[offset++] = gray;
                        buffer[offset++] = 255;
                    }
                }
            }
        }
    }
}
