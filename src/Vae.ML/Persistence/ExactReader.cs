using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Vae.ML.Persistence;

/// <summary>
/// Reads exact byte counts from a stream, feeding each byte to an optional running hash, and turns a short read into an
/// <see cref="InvalidDataException"/> that names the source and what was being read.
/// </summary>
internal sealed class ExactReader(Stream stream, string source, IncrementalHash? hash = null, long bytesBefore = 0)
{
    /// <summary>Arrays start this small and grow with the data that actually arrives, so that a file claiming a huge
    /// tensor cannot make the reader allocate more than the file holds.</summary>
    private const int InitialFloats = 1 << 14;

    /// <summary>The byte-array counterpart of <see cref="InitialFloats"/>.</summary>
    private const int InitialBytes = 1 << 16;

    /// <summary>Bytes consumed so far, counting <c>bytesBefore</c> read by someone else; messages report positions with it.</summary>
    public long BytesRead { get; private set; } = bytesBefore;

    public void ReadExactly(Span<byte> buffer, string what)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var n = stream.Read(buffer[filled..]);
            if (n == 0)
            {
                throw new InvalidDataException(
                    $"{source} is truncated: it ends after {BytesRead + filled} bytes, in the middle of {what} ({buffer.Length - filled} more bytes expected).");
            }

            filled += n;
        }

        hash?.AppendData(buffer);
        BytesRead += buffer.Length;
    }

    /// <summary>Reads as much of <paramref name="buffer"/> as the stream holds; returns how much that was.</summary>
    public int ReadUpTo(Span<byte> buffer)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var n = stream.Read(buffer[filled..]);
            if (n == 0)
            {
                break;
            }

            filled += n;
        }

        hash?.AppendData(buffer[..filled]);
        BytesRead += filled;
        return filled;
    }

    /// <summary>
    /// Reads <paramref name="count"/> bytes into an array that grows with the bytes that actually arrive (from at most
    /// <see cref="InitialBytes"/>), so a corrupt count cannot make the reader allocate more than the stream holds.
    /// </summary>
    public byte[] ReadBytes(long count, string what)
    {
        if (count > Array.MaxLength)
        {
            throw new InvalidDataException($"{source}: {what} claims {count} bytes, more than one array can hold.");
        }

        var result = new byte[Math.Min(count, InitialBytes)];
        var filled = 0;
        while (filled < count)
        {
            if (filled == result.Length)
            {
                Array.Resize(ref result, (int)Math.Min(count, (long)result.Length * 2));
            }

            var n = stream.Read(result.AsSpan(filled));
            if (n == 0)
            {
                throw new InvalidDataException(
                    $"{source} is truncated: it ends after {BytesRead + filled} bytes, in the middle of {what} ({count - filled} more bytes expected).");
            }

            filled += n;
        }

        hash?.AppendData(result);
        BytesRead += count;
        return result;
    }

    public uint ReadUInt32(string what)
    {
        Span<byte> buffer = stackalloc byte[4];
        ReadExactly(buffer, what);
        return BinaryPrimitives.ReadUInt32LittleEndian(buffer);
    }

    public ulong ReadUInt64(string what)
    {
        Span<byte> buffer = stackalloc byte[8];
        ReadExactly(buffer, what);
        return BinaryPrimitives.ReadUInt64LittleEndian(buffer);
    }

    /// <summary>Reads <paramref name="count"/> little-endian float32 values.</summary>
    public float[] ReadFloats(long count, string what)
    {
        if (count > Array.MaxLength)
        {
            throw new InvalidDataException($"{source}: {what} claims {count} values, more than one array can hold.");
        }

        var result = new float[Math.Min(count, InitialFloats)];
        var filledBytes = 0L;
        var totalBytes = count * sizeof(float);
        while (filledBytes < totalBytes)
        {
            var filledFloats = (int)(filledBytes / sizeof(float));
            if (filledFloats == result.Length)
            {
                Array.Resize(ref result, (int)Math.Min(count, (long)result.Length * 2));
            }

            // At most 4 MiB per read keeps the byte span's length within int range for any array size.
            var window = result.AsSpan(filledFloats, Math.Min(result.Length - filledFloats, 1 << 20));
            var bytes = MemoryMarshal.AsBytes(window)[(int)(filledBytes % sizeof(float))..];
            var n = stream.Read(bytes);
            if (n == 0)
            {
                throw new InvalidDataException(
                    $"{source} is truncated: it ends after {BytesRead + filledBytes} bytes, in the middle of {what} ({totalBytes - filledBytes} more bytes expected).");
            }

            hash?.AppendData(bytes[..n]);
            filledBytes += n;
        }

        BytesRead += totalBytes;
        if (!BitConverter.IsLittleEndian)
        {
            var ints = MemoryMarshal.Cast<float, int>(result.AsSpan());
            BinaryPrimitives.ReverseEndianness(ints, ints);
        }

        return result;
    }
}
