using SkiaSharp;

namespace Vae.ML.Samples.Figures;

/// <summary>Writes bitmaps and surfaces as PNG files.</summary>
internal static class PngFile
{
    /// <summary>Encodes <paramref name="bitmap"/> as PNG into <paramref name="path"/>, creating its folder.</summary>
    public static void Save(SKBitmap bitmap, string path)
    {
        using SKImage image = SKImage.FromBitmap(bitmap);
        Save(image, path);
    }

    /// <summary>Encodes <paramref name="image"/> as PNG into <paramref name="path"/>, creating its folder.</summary>
    public static void Save(SKImage image, string path)
    {
        string? folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
        }

        using SKData data = image.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InvalidOperationException($"SkiaSharp could not encode a {image.Width}x{image.Height} image as PNG for '{path}'.");
        using FileStream file = File.Create(path);
        data.SaveTo(file);
    }
}
