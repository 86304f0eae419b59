using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Vae.ML.Torch;

namespace Vae.ML.Persistence;

/// <summary>
/// Vae.ML's own model format (docs/persistence.md):
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
internal static class VaeModelFile
{
    /// <summary>Receives written bytes (Action&lt;ReadOnlySpan&lt;byte&gt;&gt; is not allowed on net8.0).</summary>
    internal delegate void ByteSink(ReadOnlySpan<byte> bytes);

    public const uint CurrentVersion = 1;

    /// <summary>A header is a few kilobytes (the history grows by ~200 bytes per epoch); anything this big is not ours.</summary>
    public const int MaxHeaderBytes = 16 << 20;

    private static readonly byte[] Magic = [0x89, (byte)'V', (byte)'a', (byte)'e', (byte)'.', (byte)'M', (byte)'L', 0x0A];

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        // A diverged training leaves NaN losses in the history; they must survive a round trip.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        MaxDepth = 8,
    };

    public static void Write(Stream stream, VaeSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(stream);
        // Never write a file that Read would reject.
        var layout = VaeParameterLayout.For(snapshot.Architecture);
        if (layout.Count != snapshot.Parameters.Count
            || layout.Zip(snapshot.Parameters).Any(p => p.First.Name != p.Second.Name || !p.First.Shape.SequenceEqual(p.Second.Shape)
                || p.Second.Values.Length != p.First.ElementCount))
        {
            throw new InvalidOperationException("The network's parameters do not match its architecture; nothing was written.");
        }

        var header = new FileHeader
        {
            Library = LibraryDescription,
            Columns = FileColumns.From(snapshot.Columns),
            InputSize = snapshot.Architecture.InputSize,
            HiddenSizes = snapshot.Architecture.HiddenSizes,
            LatentDimension = snapshot.Architecture.LatentDimension,
            Beta = snapshot.Beta,
            History = snapshot.History.ToArray(),
            Tensors = snapshot.Parameters.Select(p => new FileTensor { Name = p.Name, Shape = p.Shape }).ToArray(),
        };
        var json = JsonSerializer.SerializeToUtf8Bytes(header, Json);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Put(ReadOnlySpan<byte> bytes)
        {
            hash.AppendData(bytes);
            stream.Write(bytes);
        }

        Span<byte> number = stackalloc byte[4];
        Put(Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(number, CurrentVersion);
        Put(number);
        BinaryPrimitives.WriteUInt32LittleEndian(number, (uint)json.Length);
        Put(number);
        Put(json);
        foreach (var (_, _, values) in snapshot.Parameters)
        {
            WriteFloats(values, Put);
        }

        stream.Write(hash.GetHashAndReset());
    }

    /// <summary>Reads and fully validates a model; <paramref name="source"/> names it in error messages.</summary>
    public static VaeSnapshot Read(Stream stream, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var reader = new ExactReader(stream, source, hash);

        var magic = new byte[Magic.Length];
        if (reader.ReadUpTo(magic) < magic.Length || !magic.AsSpan().SequenceEqual(Magic))
        {
            throw new InvalidDataException($"{source} is not a Vae.ML model file (it does not start with the Vae.ML signature).");
        }

        var version = reader.ReadUInt32("the format version");
        if (version == 0 || version > CurrentVersion)
        {
            throw new InvalidDataException(
                $"{source} uses Vae.ML model format version {version}; this Vae.ML ({LibraryDescription}) reads versions 1 to {CurrentVersion}. " +
                "Load it with a newer Vae.ML.");
        }

        var length = reader.ReadUInt32("the header length");
        if (length is 0 or > MaxHeaderBytes)
        {
            throw new InvalidDataException($"{source} is corrupt: its header claims {length} bytes (at most {MaxHeaderBytes} expected).");
        }

        var json = reader.ReadBytes((int)length, "the JSON header");
        var (columns, architecture, beta, history, tensors) = ParseHeader(json, source);
        var expected = VaeParameterLayout.For(architecture);
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

    internal static string LibraryDescription => $"Vae.ML {typeof(VaeModelFile).Assembly.GetName().Version?.ToString(3)}";

    private static (VaeTransformer.ColumnNames Columns, VaeArchitecture Architecture, double Beta, VaeEpochMetrics[] History, TensorShape[] Tensors)
        ParseHeader(byte[] json, string source)
    {
        FileHeader? header;
        try
        {
            header = JsonSerializer.Deserialize<FileHeader>(json, Json);
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

        var architecture = new VaeArchitecture(header.InputSize, hiddenSizes, header.LatentDimension);
        if (VaeParameterLayout.Problem(architecture) is string problem)
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

    internal static void WriteFloats(float[] values, ByteSink put)
    {
        const int Chunk = 1 << 16;
        if (BitConverter.IsLittleEndian)
        {
            for (var i = 0; i < values.Length; i += Chunk)
            {
                put(MemoryMarshal.AsBytes(values.AsSpan(i, Math.Min(Chunk, values.Length - i))));
            }

            return;
        }

        var buffer = new byte[Chunk * sizeof(float)];
        for (var i = 0; i < values.Length; i += Chunk)
        {
            var n = Math.Min(Chunk, values.Length - i);
            for (var j = 0; j < n; j++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(j * sizeof(float)), values[i + j]);
            }

            put(buffer.AsSpan(0, n * sizeof(float)));
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

        public static FileColumns From(VaeTransformer.ColumnNames c) => new()
        {
            Feature = c.Feature,
            Latent = c.Latent,
            LatentLogVariance = c.LatentLogVariance,
            Reconstruction = c.Reconstruction,
            Score = c.Score,
        };

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
