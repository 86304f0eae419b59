using Microsoft.ML;

namespace Vae.ML.Datasets;

/// <summary>The two official parts of MNIST.</summary>
public enum MnistSplit
{
    /// <summary>The 60,000 training images (<c>train-*-ubyte</c>).</summary>
    Train,

    /// <summary>The 10,000 test images (<c>t10k-*-ubyte</c>).</summary>
    Test,
}

/// <summary>
/// Labelled grey-scale images as row-major float pixels in [0, 1] (byte / 255, as torchvision's <c>ToTensor</c>),
/// plus one label byte per image. Used for MNIST, and for any IDX data set of the same shape (e.g. Fashion-MNIST).
/// </summary>
public sealed class MnistImages
{
    /// <summary>Creates an image set over existing arrays (kept, not copied).</summary>
    /// <param name="rows">Rows of every image.</param>
    /// <param name="columns">Columns of every image.</param>
    /// <param name="pixels">Pixels in [0, 1], row-major, image after image: labels.Length × rows × columns values.</param>
    /// <param name="labels">One label per image.</param>
    /// <exception cref="ArgumentException">The array lengths do not match.</exception>
    public MnistImages(int rows, int columns, float[] pixels, byte[] labels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        long expected = (long)labels.Length * rows * columns;
        if (pixels.LongLength != expected)
        {
            throw new ArgumentException(
                $"{labels.Length} labelled images of {rows}x{columns} need {expected} pixels, but {pixels.LongLength} were given.",
                nameof(pixels));
        }

        Rows = rows;
        Columns = columns;
        Pixels = pixels;
        Labels = labels;
    }

    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>Rows of every image (28 for MNIST).</summary>
    public int Rows { get; }

    /// <summary>Columns of every image (28 for MNIST).</summary>
    public int Columns { get; }

    /// <summary>Pixels per image: <see cref="Rows"/> × <see cref="Columns"/> (784 for MNIST).</summary>
    public int PixelsPerImage => Rows * Columns;

    /// <summary>All pixels in [0, 1], row-major, image after image: <see cref="Count"/> × <see cref="PixelsPerImage"/> values.</summary>
    public float[] Pixels { get; }

    /// <summary>One label per image (0-9 for MNIST).</summary>
    public byte[] Labels { get; }

    /// <summary>Reads an IDX image file and its IDX label file (each raw or gzip-compressed) and scales pixels to [0, 1].</summary>
    /// <param name="imagesPath">The IDX image file (magic 0x00000803).</param>
    /// <param name="labelsPath">The IDX label file (magic 0x00000801).</param>
    /// <returns>The labelled images.</returns>
    /// <exception cref="InvalidDataException">A file is not valid IDX, or the files hold different numbers of items.</exception>
    public static MnistImages FromIdxFiles(string imagesPath, string labelsPath)
    {
        var images = IdxReader.ReadImages(imagesPath);
        var labels = IdxReader.ReadLabels(labelsPath);
        if (labels.Length != images.Count)
        {
            throw new InvalidDataException(
                $"Label file '{labelsPath}' holds {labels.Length} labels but image file '{imagesPath}' holds {images.Count} images; expected one label per image.");
        }

        return new MnistImages(images.Rows, images.Columns, ToUnitInterval(images.Pixels), labels);
    }

    /// <summary>The pixels of one image, row-major.</summary>
    /// <param name="index">Zero-based image index.</param>
    /// <returns>A view of <see cref="PixelsPerImage"/> values inside <see cref="Pixels"/>.</returns>
    public ReadOnlySpan<float> GetImage(int index)
    {
        if ((uint)index >= (uint)Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Image index must be in [0, {Count}).");
        }

        return Pixels.AsSpan(index * PixelsPerImage, PixelsPerImage);
    }

    /// <summary>The first <paramref name="count"/> images, copied (for tests and quick experiments).</summary>
    /// <param name="count">How many images to keep, from 0 to <see cref="Count"/>.</param>
    /// <returns>A new image set with copies of the first images and labels.</returns>
    public MnistImages Take(int count)
    {
        if ((uint)count > (uint)Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Can take from 0 to {Count} images.");
        }

        return new MnistImages(Rows, Columns, Pixels.AsSpan(0, count * PixelsPerImage).ToArray(), Labels.AsSpan(0, count).ToArray());
    }

    /// <summary>
    /// An <see cref="IDataView"/> over these images, in order, with columns <see cref="Mnist.LabelColumnName"/>
    /// (<see cref="uint"/>) and <see cref="Mnist.FeaturesColumnName"/> (known-size vector of
    /// <see cref="PixelsPerImage"/> <see cref="float"/>s). Pixels are served straight from <see cref="Pixels"/>,
    /// so do not change that array while the view is in use.
    /// </summary>
    /// <param name="mlContext">The ML.NET context of the pipeline that will read the view.</param>
    /// <returns>The data view; it cannot shuffle (use <c>mlContext.Data.ShuffleRows</c>).</returns>
    public IDataView ToDataView(MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var labels = new uint[Labels.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            labels[i] = Labels[i];
        }

        return new FeatureMatrixDataView(Pixels, PixelsPerImage, labels, Mnist.FeaturesColumnName, Mnist.LabelColumnName);
    }

    private static float[] ToUnitInterval(byte[] pixels)
    {
        var scaled = new float[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            // Divide (not multiply by 1/255) so values equal torchvision's ToTensor bit for bit.
            scaled[i] = pixels[i] / 255f;
        }

        return scaled;
    }
}
