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
/// <remarks>
/// A set read from IDX files keeps the files' bytes (one per pixel: 47 MB for MNIST's training images) and scales them
/// as they are read: by <see cref="ToDataView"/>'s cursors and <see cref="CopyPixels(int, int, Span{float})"/>. The float
/// array <see cref="Pixels"/> (four bytes per pixel) is made only when it is asked for, so a pipeline that trains on the
/// view holds the data once as bytes and once in the trainer, not a third time as floats.
/// </remarks>
public sealed class MnistImages
{
    /// <summary>byte / 255 for every byte: the same float as the division, looked up.</summary>
    private static readonly float[] UnitScale = Enumerable.Range(0, 256).Select(b => (byte)b / 255f).ToArray();

    /// <summary>The pixels as read (0-255), or null for a set made from floats.</summary>
    private readonly byte[]? _pixelBytes;
    private float[]? _pixels;

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
        _pixels = pixels;
        Labels = labels;
    }

    private MnistImages(int rows, int columns, byte[] pixelBytes, byte[] labels)
    {
        long expected = (long)labels.Length * rows * columns;
        if (pixelBytes.LongLength != expected)
        {
            throw new ArgumentException(
                $"{labels.Length} labelled images of {rows}x{columns} need {expected} pixels, but {pixelBytes.LongLength} were given.",
                nameof(pixelBytes));
        }

        Rows = rows;
        Columns = columns;
        _pixelBytes = pixelBytes;
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
    /// <remarks>
    /// For a set read from IDX files the array is made from the bytes at the first access (4 bytes per pixel: 188 MB
    /// for MNIST's training images) and kept. <see cref="ToDataView"/> and <see cref="CopyPixels(int, int, Span{float})"/>
    /// do not need it.
    /// </remarks>
    public float[] Pixels => _pixels ?? LazyInitializer.EnsureInitialized(ref _pixels, () => ToUnitInterval(_pixelBytes!));

    /// <summary>Whether the float array <see cref="Pixels"/> exists (made, or given); for tests of the byte-backed path.</summary>
    internal bool HoldsFloatPixels => Volatile.Read(ref _pixels) is not null;

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

        return FromPixelBytes(images.Rows, images.Columns, images.Pixels, labels);
    }

    /// <summary>An image set over pixel bytes 0-255 (kept, not copied), scaled to [0, 1] as they are read.</summary>
    internal static MnistImages FromPixelBytes(int rows, int columns, byte[] pixelBytes, byte[] labels) => new(rows, columns, pixelBytes, labels);

    /// <summary>Copies images <paramref name="firstImage"/> … <paramref name="firstImage"/> + <paramref name="count"/> − 1 into <paramref name="destination"/>, in [0, 1].</summary>
    /// <param name="firstImage">Zero-based index of the first image.</param>
    /// <param name="count">Number of images.</param>
    /// <param name="destination">Receives <paramref name="count"/> × <see cref="PixelsPerImage"/> values, row-major.</param>
    /// <exception cref="ArgumentOutOfRangeException">The images are not all in the set.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is too short.</exception>
    public void CopyPixels(int firstImage, int count, Span<float> destination)
    {
        if (firstImage < 0 || count < 0 || (long)firstImage + count > Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"Images {firstImage} to {(long)firstImage + count - 1} are not all in [0, {Count}).");
        }

        int length = count * PixelsPerImage;
        if (destination.Length < length)
        {
            throw new ArgumentException($"{count} images need {length} values; the destination holds {destination.Length}.", nameof(destination));
        }

        int start = firstImage * PixelsPerImage;
        if (_pixels is { } pixels)
        {
            pixels.AsSpan(start, length).CopyTo(destination);
        }
        else
        {
            ScaleToUnitInterval(_pixelBytes.AsSpan(start, length), destination);
        }
    }

    /// <summary>Images <paramref name="firstImage"/> … <paramref name="firstImage"/> + <paramref name="count"/> − 1 as a new array of pixels in [0, 1].</summary>
    /// <param name="firstImage">Zero-based index of the first image.</param>
    /// <param name="count">Number of images.</param>
    /// <returns><paramref name="count"/> × <see cref="PixelsPerImage"/> values, row-major.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The images are not all in the set.</exception>
    public float[] CopyPixels(int firstImage, int count)
    {
        var pixels = new float[Math.Max(0, count) * PixelsPerImage];
        CopyPixels(firstImage, count, pixels);
        return pixels;
    }

    /// <summary>The pixels of one image, row-major.</summary>
    /// <param name="index">Zero-based image index.</param>
    /// <returns>A view of <see cref="PixelsPerImage"/> values inside <see cref="Pixels"/> (which this makes, for a set read from files; <see cref="CopyPixels(int, int)"/> does not).</returns>
    public ReadOnlySpan<float> GetImage(int index)
    {
        if ((uint)index >= (uint)Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Image index must be in [0, {Count}).");
        }

        return Pixels.AsSpan(index * PixelsPerImage, PixelsPerImage);
    }

    /// <summary>The first <paramref name="count"/> images, copied (for tests and quick experiments; bytes stay bytes).</summary>
    /// <param name="count">How many images to keep, from 0 to <see cref="Count"/>.</param>
    /// <returns>A new image set with copies of the first images and labels.</returns>
    public MnistImages Take(int count)
    {
        if ((uint)count > (uint)Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Can take from 0 to {Count} images.");
        }

        byte[] labels = Labels.AsSpan(0, count).ToArray();
        return _pixels is { } pixels
            ? new MnistImages(Rows, Columns, pixels.AsSpan(0, count * PixelsPerImage).ToArray(), labels)
            : new MnistImages(Rows, Columns, _pixelBytes.AsSpan(0, count * PixelsPerImage).ToArray(), labels);
    }

    /// <summary>
    /// An <see cref="IDataView"/> over these images, in order, with columns <see cref="Mnist.LabelColumnName"/>
    /// (<see cref="uint"/>) and <see cref="Mnist.FeaturesColumnName"/> (known-size vector of
    /// <see cref="PixelsPerImage"/> <see cref="float"/>s). Pixels are served straight from the set's own storage (the
    /// file's bytes, scaled as each row is read, or the float array it was made from; do not change that array while
    /// the view is in use): the view makes no copy of the images.
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

        return _pixels is { } pixels
            ? new FeatureMatrixDataView(pixels, PixelsPerImage, labels, Mnist.FeaturesColumnName, Mnist.LabelColumnName)
            : FeatureMatrixDataView.FromPixelBytes(_pixelBytes!, PixelsPerImage, labels, Mnist.FeaturesColumnName, Mnist.LabelColumnName);
    }

    /// <summary>Pixels 0-255 as floats in [0, 1]: byte / 255 (divided, not multiplied by 1/255, so values equal torchvision's ToTensor bit for bit).</summary>
    internal static void ScaleToUnitInterval(ReadOnlySpan<byte> pixels, Span<float> destination)
    {
        float[] scale = UnitScale;
        for (int i = 0; i < pixels.Length; i++)
        {
            destination[i] = scale[pixels[i]];
        }
    }

    private static float[] ToUnitInterval(byte[] pixels)
    {
        var scaled = new float[pixels.Length];
        ScaleToUnitInterval(pixels, scaled);
        return scaled;
    }
}
