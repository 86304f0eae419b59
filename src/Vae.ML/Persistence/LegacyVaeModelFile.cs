using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Vae.ML.Torch;

namespace Vae.ML.Persistence;

/// <summary>
/// Reads Vae.ML's first model format, the binary ".vae" file of version 1 (docs/persistence.md), so that models saved
/// before the move to safetensors still load. Nothing writes it any more.
/// <code>
/// magic      8 bytes   0x89 'V' 'a' 'e' '.' 'M' 'L' 0x0A
/// version    uint32 LE format version (1)
/// length     uint32 LE byte length of the JSON header
/// header     UTF-8 JSON: column names, architecture, beta, training history, tensor names and shapes
/// tensors    float32 LE, each tensor of the header in order, row-major
/// checksum   32 bytes  SHA-256 of every byte before it
/// </code>
/// Reading checks everything, checksum included, before any native memory is allocated.
/// </summary>
internal static class LegacyVaeModelFile
{
    public const uint CurrentVersion = 1;

    /// <summary>A header is a few kilobytes (the history grows by ~200 bytes per epoch); anything this big is not ours.</summary>
    public const int MaxHeaderBytes = 16 << 20;

    /// <summary>The first 8 bytes of every version-1 file; a safetensors file cannot start with them (its header length would exceed any cap).</summary>
    public static readonly byte[] Magic = [0x89, (byte)'V', (byte)'a', (byte)'e', (byte)'.', (byte)'M', (byte)'L', 0x0A];

    /// <summary>
    /// Reads and fully validates a model whose first 8 bytes, <paramref name="magic"/>, the caller has already read and
    /// found equal to <see cref="Magic"/>; <paramref name="source"/> names it in error messages.
    /// </summary>
    public static VaeSnapshot ReadAfterMagic(Stream stream, ReadOnlySpan<byte> magic, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(magic);
        var reader = new ExactReader(stream, source, hash, magic.Length);

        var version = reader.ReadUInt32("the format version");
        if (version == 0 || version > CurrentVersion)
        {
            throw new InvalidDataException(
                $"{source} is corrupt: it has the signature of a Vae.ML binary model file (format version 1) but claims version {version}.");
        }

        var length = reader.ReadUInt32("the header length");
        if (length is 0 or > MaxHeaderBytes)
        {
            throw new InvalidDataException($"{source} is corrupt: its header claims {length} bytes (at most {MaxHeaderBytes} expected).");
        }

        var json = reader.ReadBytes((int)length, "the JSON header");
        var (columns, architecture, beta, history, tensors) = ParseHeader(json, source);
        var expected = architecture.Layout;
        CheckTensorList(tensors, expected, source);

        var parameters = new List<(string, long[], float[])>(expected.Count);
        foreach (var tensor in expected)
        {
            parameters.Add((tensor.Name, tensor.Shape, reader.ReadFloats(tensor.ElementCount, $"tensor '{tensor.Name}'")));
        }

        var computed = hash.GetHashAndReset();
        var stored = new byte[computed.Length];
        new ExactReader(stream, source, bytesBefore: reader.BytesRead).ReadExactly(stored, "the SHA-256 checksum");
        if (!CryptographicOperations.FixedTimeEquals(computed, stored))
        {
            throw new InvalidDataException($"{source} is corrupt: its SHA-256 checksum does not match its contents.");
        }

        return new VaeSnapshot(columns, architecture, beta, history, parameters);
    }

    private static (VaeTransformer.ColumnNames Columns, VaeNetworkSpec Architecture, double Beta, VaeEpochMetrics[] History, TensorShape[] Tensors)
        ParseHeader(byte[] json, string source)
    {
        FileHeader? header;
        try
        {
            header = JsonSerializer.Deserialize<FileHeader>(json, VaeModelFormat.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source} is corrupt: its JSON header cannot be read ({e.Message}).", e);
        }

        if (header is not { Columns: { } columns, HiddenSizes: { } hiddenSizes, History: { } history, Tensors: { } tensors }
            || history.Any(h => h is null) || tensors.Any(t => t?.Name is null || t.Shape is null))
        {
            throw new InvalidDataException($"{source} is corrupt: its JSON header lacks required entries.");
        }

        var architecture = VaeNetworkSpec.Mlp(header.InputSize, hiddenSizes, header.LatentDimension);
        if (architecture.Problem() is string problem)
        {
            throw new InvalidDataException($"{source} is corrupt: {problem}.");
        }

        if (!(header.Beta >= 0) || double.IsInfinity(header.Beta))
        {
            throw new InvalidDataException($"{source} is corrupt: beta {header.Beta} is not a finite number ≥ 0.");
        }

        return (columns.ToColumnNames(source), architecture, header.Beta, history, tensors.Select(t => new TensorShape(t.Name!, t.Shape!)).ToArray());
    }

    private static void CheckTensorList(TensorShape[] stored, IReadOnlyList<TensorShape> expected, string source)
    {
        var same = stored.Length == expected.Count
            && stored.Zip(expected).All(p => p.First.Name == p.Second.Name && p.First.Shape.SequenceEqual(p.Second.Shape));
        if (!same)
        {
            throw new InvalidDataException(
                $"{source} is corrupt: its tensors [{string.Join(", ", stored.Select(t => $"{t.Name} {t.ShapeText}"))}] " +
                $"do not match its architecture, which needs [{string.Join(", ", expected.Select(t => $"{t.Name} {t.ShapeText}"))}].");
        }
    }

    private sealed class FileHeader
    {
        public string? Library { get; set; }

        public FileColumns? Columns { get; set; }

        public int InputSize { get; set; }

        public int[]? HiddenSizes { get; set; }

        public int LatentDimension { get; set; }

        public double Beta { get; set; }

        public VaeEpochMetrics[]? History { get; set; }

        public FileTensor[]? Tensors { get; set; }
    }

    private sealed class FileTensor
    {
        public string? Name { get; set; }

        public long[]? Shape { get; set; }
    }

    private sealed class FileColumns
    {
        public string? Feature { get; set; }

        public string? Latent { get; set; }

        public string? LatentLogVariance { get; set; }

        public string? Reconstruction { get; set; }

        public string? Score { get; set; }

        public VaeTransformer.ColumnNames ToColumnNames(string source)
        {
            var names = new VaeTransformer.ColumnNames(Feature!, Latent!, LatentLogVariance!, Reconstruction!, Score!);
            try
            {
                names.Check();
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{source} is corrupt: {e.Message}", e);
            }

            return names;
        }
    }
}
