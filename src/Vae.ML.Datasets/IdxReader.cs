using System.Buffers.Binary;
using System.IO.Compression;

namespace Vae.ML.Datasets;

/// <summary>
/// Images read from an IDX file (the format of MNIST and Fashion-MNIST): unsigned bytes, row-major,
/// image after image.
/// </summary>
public sealed class IdxImages
{
    /// <summary>Creates an image set over <paramref name="pixels"/> (<paramref name="count"/> × rows × columns bytes).</summary>
    /// <param name="count">Number of images.</param>
    /// <param name="rows">Rows of every image.</param>
    /// <param name="columns">Columns of every image.</param>
    /// <param name="pixels">Pixels, row-major, image after image; kept, not copied.</param>
    public IdxImages(int count, int rows, int columns, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if ((long)count * rows * columns != pixels.LongLength)
        {
            throw new ArgumentException(
                $"{count} images of {rows}x{columns} need {(long)count * rows * columns} pixels, but {pixels.LongLength} were given.",
                nameof(pixels));
        }

        Count = count;
        Rows = rows;
        Columns = columns;
        Pixels = pixels;
    }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>Rows of every image.</summary>
    public int Rows { get; }

    /// <summary>Columns of every image.</summary>
    public int Columns { get; }

    /// <summary>Pixels (0-255), row-major, image after image: <see cref="Count"/> × <see cref="Rows"/> × <see cref="Columns"/> bytes.</summary>
    public byte[] Pixels { get; }
}

/// <summary>
/// Reads IDX files (the format of MNIST and Fashion-MNIST), raw or gzip-compressed. Compression is recognised
/// by the gzip magic bytes, not by the file name.
/// </summary>
/// <remarks>
/// An IDX file starts with two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then each
/// dimension as a big-endian 32-bit integer, then the data. Images are 3-dimensional (count, rows, columns), labels
/// 1-dimensional (count). Files must hold exactly the data their header announces.
/// </remarks>
public static class IdxReader
{
    /// <summary>The magic number of an IDX file of unsigned-byte images (3 dimensions).</summary>
    public const int ImagesMagicNumber = 0x00000803;

    /// <summary>The magic number of an IDX file of unsigned-byte labels (1 dimension).</summary>
    public const int LabelsMagicNumber = 0x00000801;

    private const byte GzipFirstByte = 0x1f;
    private const byte GzipSecondByte = 0x8b;

    /// <summary>Reads an IDX image file (magic 0x00000803), raw or gzip-compressed.</summary>
    /// <param name="path">The file to read.</param>
    /// <returns>The images with their dimensions.</returns>
    /// <exception cref="InvalidDataException">The file is not an IDX image file, or is truncated or too long.</exception>
    public static IdxImages ReadImages(string path)
    {
        using var stream = OpenRead(path);
        int[] dimensions = ReadHeader(stream, path, ImagesMagicNumber, "images");
        int count = dimensions[0], rows = dimensions[1], columns = dimensions[2];
        if (rows == 0 || columns == 0)
        {
            throw new InvalidDataException($"IDX file '{path}' announces images of {rows}x{columns} pixels; expected at least 1x1.");
        }

        long length = (long)count * rows * columns;
        if (length > Array.MaxLength)
        {
            throw new InvalidDataException($"IDX file '{path}' announces {count} images of {rows}x{columns} pixels: more than one array can hold.");
        }

        byte[] pixels = ReadData(stream, path, (int)length, $"{count} images of {rows}x{columns} pixels");
        return new IdxImages(count, rows, columns, pixels);
    }

    /// <summary>Reads an IDX label file (magic 0x00000801), raw or gzip-compressed.</summary>
    /// <param name="path">The file to read.</param>
    /// <returns>One byte per label.</returns>
    /// <exception cref="InvalidDataException">The file is not an IDX label file, or is truncated or too long.</exception>
    public static byte[] ReadLabels(string path)
    {
        using var stream = OpenRead(path);
        int[] dimensions = ReadHeader(stream, path, LabelsMagicNumber, "labels");
        return ReadData(stream, path, dimensions[0], $"{dimensions[0]} labels");
    }

    /// <summary>
    /// Opens a file for reading, decompressing it on the fly when it starts with the gzip magic bytes (0x1f 0x8b).
    /// </summary>
    /// <param name="path">The file to open.</param>
    /// <returns>A stream of the file's (decompressed) content; the caller disposes it.</returns>
    public static Stream OpenRead(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 1 << 16);
        try
        {
            Span<byte> magic = stackalloc byte[2];
            int read = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
            file.Position = 0;
            if (read == 2 && magic[0] == GzipFirstByte && magic[1] == GzipSecondByte)
            {
                return new GZipStream(file, CompressionMode.Decompress, leaveOpen: false);
            }

            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static int[] ReadHeader(Stream stream, string path, int expectedMagic, string what)
    {
        Span<byte> word = stackalloc byte[4];
        ReadHeaderWord(stream, word, path);
        int magic = BinaryPrimitives.ReadInt32BigEndian(word);
        if (magic != expectedMagic)
        {
            throw new InvalidDataException(
                $"IDX file '{path}' has magic number 0x{magic:x8}; expected 0x{expectedMagic:x8} (unsigned-byte {what}, {expectedMagic & 0xff} dimension(s)).");
        }

        var dimensions = new int[expectedMagic & 0xff];
        for (int i = 0; i < dimensions.Length; i++)
        {
            ReadHeaderWord(stream, word, path);
            dimensions[i] = BinaryPrimitives.ReadInt32BigEndian(word);
            if (dimensions[i] < 0)
            {
                throw new InvalidDataException($"IDX file '{path}' has a negative size ({dimensions[i]}) in dimension {i}.");
            }
        }

        return dimensions;
    }

    private static void ReadHeaderWord(Stream stream, Span<byte> word, string path)
    {
        if (ReadFully(stream, word, path) != word.Length)
        {
            throw new InvalidDataException($"IDX file '{path}' is truncated: it ends inside its header.");
        }
    }

    private static byte[] ReadData(Stream stream, string path, int length, string description)
    {
        var data = new byte[length];
        int read = ReadFully(stream, data, path);
        if (read != length)
        {
            throw new InvalidDataException(
                $"IDX file '{path}' is truncated: its header announces {description} ({length} bytes of data), but only {read} bytes follow.");
        }

        Span<byte> probe = stackalloc byte[1];
        if (ReadFully(stream, probe, path) != 0)
        {
            throw new InvalidDataException(
                $"IDX file '{path}' is longer than its header announces ({description}, {length} bytes of data): it is damaged or not an IDX file.");
        }

        return data;
    }

    private static int ReadFully(Stream stream, Span<byte> buffer, string path)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException exception)
        {
            // GZipStream reports damaged or truncated compressed data without naming the file.
            throw new InvalidDataException($"IDX file '{path}' is gzip-compressed but its compressed data is damaged: {exception.Message}", exception);
        }
    }
}
